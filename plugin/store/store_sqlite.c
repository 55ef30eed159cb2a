/*
 * store_sqlite.c — the SQLite backend of the store (store.h): opening,
 * and one transaction per operation. The schema and its migrations are in
 * store_sqlite_migrations.c.
 *
 * Opening happens on the caller's thread so that every problem is reported
 * at once, as a sentence: the file is created 0600 by open(2) before
 * SQLite sees it (SQLite then gives its -wal and -shm files the same mode),
 * an existing file readable by others is tightened, the connection is put
 * in WAL mode with synchronous=FULL (a commit is on disk when COMMIT
 * returns, which is what lets an answer be acknowledged from its
 * callback), foreign keys on, secure_delete on (erased rows are
 * overwritten, not left in free pages), migrations run, and every
 * statement is prepared once. Afterwards only the writer thread uses the
 * connection (store.c).
 *
 * Every multi-statement job is one BEGIN IMMEDIATE ... COMMIT: the write
 * lock is taken up front, so a check made inside the transaction (is this
 * pulse already answered?) still holds when the write happens, even with
 * another process on the same file. That check gives the caller its
 * answer (STORE_ALREADY_FINAL and why); the same rules are also written
 * into the schema as triggers, so no code path and no other writer can
 * break them (a write that gets past the check aborts the transaction).
 *
 * Values are always bound; no SQL is built from strings at run time.
 */
#include "store_sqlite.h"
#include "store_backend.h"
#include "store_rows.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#define BUSY_TIMEOUT_MS 5000

/* --- statements ---------------------------------------------------------------------- */

enum {
	ST_BEGIN, ST_BEGIN_READ, ST_COMMIT, ST_ROLLBACK,
	ST_VISIT_INSERT, ST_VISIT_STATE,
	ST_PARTICIPANT_INSERT,
	ST_PULSE_INSERT, ST_PULSE_READ, ST_PULSE_SET_STATUS,
	ST_ANSWER_INSERT, ST_ANSWER_UPDATE, ST_ANSWER_ITEM, ST_ANSWER_FINAL, ST_SCORE_INSERT,
	ST_DISMISS_INSERT, ST_DISMISS_UPDATE,
	ST_ALERT_INSERT, ST_EVENT_INSERT, ST_SAMPLE_INSERT,
	ST_CLIENT_SCORES,
	ST_PULSE_QUALITY, ST_INCIDENT_INSERT, ST_PULSE_SET_VIA,
	ST_VISIT_EXISTS, ST_VISIT_PULSE_QUALITY, ST_VISIT_INCIDENTS, ST_VISIT_SAMPLES,
	ST_VISIT_ENDED, ST_OPEN_VISITS, ST_REPAIR_PULSES, ST_REPAIR_INCIDENTS, ST_REPAIR_VISIT,
	ST_INSTANCE_SEEN, ST_VISIT_LOCATE,
	ST__COUNT
};

static const char *const statement_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",         /* a read: one snapshot, no write lock */
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_VISIT_INSERT] =
		"INSERT INTO visits(visit_id, therapist_code, client_code, modality, state, created_at,"
		" instance_id, invite_sha256) VALUES (?1, ?2, ?3, ?4, 'created', ?5, ?6, ?7)",
	/* the *_at columns keep the first time the visit entered that state;
	 * a closed visit's invite routes nothing any more */
	[ST_VISIT_STATE] =
		"UPDATE visits SET state = ?2,"
		" invite_sha256 = CASE WHEN ?2 = 'closed' THEN NULL ELSE invite_sha256 END,"
		" admitted_at = CASE WHEN ?2 = 'live' THEN coalesce(admitted_at, ?3) ELSE admitted_at END,"
		" ended_at = CASE WHEN ?2 = 'ended' THEN coalesce(ended_at, ?3) ELSE ended_at END,"
		" closed_at = CASE WHEN ?2 = 'closed' THEN coalesce(closed_at, ?3) ELSE closed_at END"
		" WHERE visit_id = ?1",
	[ST_VISIT_ENDED] =
		"UPDATE visits SET state = 'ended', ended_at = coalesce(ended_at, ?3),"
		" end_reason = coalesce(end_reason, ?2) WHERE visit_id = ?1 AND state <> 'closed'",
	/* the start-up repair: each open visit with its last recorded activity */
	[ST_OPEN_VISITS] =
		"SELECT v.visit_id, max(v.created_at, coalesce(v.admitted_at, 0), coalesce(v.ended_at, 0),"
		"  coalesce((SELECT max(at) FROM quality_samples q WHERE q.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(status_at) FROM pulses p WHERE p.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(a.answered_at) FROM answers a JOIN pulses p ON p.pulse_id = a.pulse_id"
		"            WHERE p.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(coalesce(ended_at, started_at)) FROM incidents i WHERE i.visit_id = v.visit_id), 0),"
		"  coalesce((SELECT max(joined_at) FROM participants j WHERE j.visit_id = v.visit_id), 0))"
		" FROM visits v WHERE v.state <> 'closed' AND (v.instance_id = ?1 OR v.instance_id IS NULL)",
	[ST_REPAIR_PULSES] =
		"UPDATE pulses SET status = 'expired', status_at = max(status_at, ?2)"
		" WHERE visit_id = ?1 AND status IN ('pending','delivered','partial')",
	[ST_REPAIR_INCIDENTS] =
		"UPDATE incidents SET ended_at = max(started_at, ?2) WHERE visit_id = ?1 AND ended_at IS NULL",
	[ST_REPAIR_VISIT] =
		"UPDATE visits SET state = 'closed', ended_at = coalesce(ended_at, ?2),"
		" end_reason = coalesce(end_reason, 'interrupted'), closed_at = ?3, invite_sha256 = NULL"
		" WHERE visit_id = ?1",
	[ST_INSTANCE_SEEN] =
		"INSERT INTO instances(instance_id, public_servers, started_at, seen_at)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT(instance_id) DO UPDATE SET"
		" public_servers = excluded.public_servers, started_at = excluded.started_at,"
		" seen_at = excluded.seen_at",
	/* visits_by_invite, or the primary key */
	[ST_VISIT_LOCATE] =
		"SELECT coalesce(v.instance_id, ''), coalesce(i.public_servers, '[]') FROM visits v"
		" LEFT JOIN instances i ON i.instance_id = v.instance_id"
		" WHERE v.state <> 'closed' AND ((?1 IS NOT NULL AND v.visit_id = ?1)"
		"  OR (?1 IS NULL AND v.invite_sha256 = ?2))",
	[ST_PARTICIPANT_INSERT] =
		"INSERT INTO participants(visit_id, role, code, research_consent, language, joined_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_PULSE_INSERT] =
		"INSERT INTO pulses(pulse_id, visit_id, role, kind, instrument_id, instrument_version,"
		" language, \"trigger\", delivered_via, created_at, expires_at, status, status_at)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'pending', ?10)",
	[ST_PULSE_READ] =
		"SELECT p.status, a.pulse_id IS NOT NULL, coalesce(a.final, 0), coalesce(a.dismissed, 0)"
		" FROM pulses p LEFT JOIN answers a ON a.pulse_id = p.pulse_id WHERE p.pulse_id = ?1",
	[ST_PULSE_SET_STATUS] =
		"UPDATE pulses SET status = ?2, status_at = ?3 WHERE pulse_id = ?1",
	[ST_ANSWER_INSERT] =
		"INSERT INTO answers(pulse_id, final, first_at, answered_at, time_to_answer_ms,"
		" research_consent, dismissed) VALUES (?1, 0, ?2, ?2, ?3, ?4, 0)",
	[ST_ANSWER_UPDATE] =
		"UPDATE answers SET answered_at = ?2, time_to_answer_ms = ?3, research_consent = ?4"
		" WHERE pulse_id = ?1",
	[ST_ANSWER_ITEM] =
		"INSERT OR REPLACE INTO answer_items(pulse_id, item_id, value) VALUES (?1, ?2, ?3)",
	[ST_ANSWER_FINAL] =
		"UPDATE answers SET final = 1 WHERE pulse_id = ?1",
	[ST_SCORE_INSERT] =
		"INSERT INTO scores(pulse_id, name, value) VALUES (?1, ?2, ?3)",
	[ST_DISMISS_INSERT] =
		"INSERT INTO answers(pulse_id, final, first_at, answered_at, time_to_answer_ms,"
		" research_consent, dismissed) VALUES (?1, 0, ?2, ?2, NULL, NULL, 1)",
	[ST_DISMISS_UPDATE] =
		"UPDATE answers SET dismissed = 1, answered_at = ?2 WHERE pulse_id = ?1",
	[ST_ALERT_INSERT] =
		"INSERT INTO alerts(visit_id, pulse_id, rule, score_name, score, threshold,"
		" quality_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[ST_EVENT_INSERT] =
		"INSERT INTO events(visit_id, kind, detail_json, at) VALUES (?1, ?2, ?3, ?4)",
	[ST_SAMPLE_INSERT] =
		"INSERT INTO quality_samples(visit_id, leg, medium, at, metrics_json)"
		" VALUES (?1, ?2, ?3, ?4, ?5)",
	/* visits_by_client -> pulses_by_visit -> answers and scores primary keys;
	 * the inner query takes the `limit` most recent, the outer one puts
	 * them oldest first */
	[ST_CLIENT_SCORES] =
		"SELECT value FROM ("
		"  SELECT s.value AS value, a.answered_at AS t, p.pulse_id AS pid"
		"  FROM visits v"
		"  JOIN pulses p ON p.visit_id = v.visit_id"
		"  JOIN answers a ON a.pulse_id = p.pulse_id"
		"  JOIN scores s ON s.pulse_id = p.pulse_id"
		"  WHERE v.client_code = ?1 AND p.instrument_id = ?2 AND p.role = 'client'"
		"    AND s.name = ?3 AND a.final = 1 AND (?4 IS NULL OR v.visit_id <> ?4)"
		"  ORDER BY a.answered_at DESC, p.pulse_id DESC LIMIT ?5"
		") ORDER BY t ASC, pid ASC",
	[ST_PULSE_QUALITY] =
		"UPDATE pulses SET quality_json = ?2 WHERE pulse_id = ?1",
	[ST_PULSE_SET_VIA] =
		"UPDATE pulses SET delivered_via = ?2 WHERE pulse_id = ?1 AND delivered_via IS NULL",
	[ST_INCIDENT_INSERT] =
		"INSERT INTO incidents(visit_id, leg, medium, kind, started_at, ended_at, detail_json)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_VISIT_EXISTS] =
		"SELECT 1 FROM visits WHERE visit_id = ?1",
	[ST_VISIT_PULSE_QUALITY] =
		"SELECT pulse_id, quality_json FROM pulses WHERE visit_id = ?1"
		" ORDER BY created_at, pulse_id",
	/* incidents_by_visit gives the order */
	[ST_VISIT_INCIDENTS] =
		"SELECT leg, medium, kind, started_at, ended_at, detail_json FROM incidents"
		" WHERE visit_id = ?1 ORDER BY started_at, id",
	[ST_VISIT_SAMPLES] =
		"SELECT count(*) FROM quality_samples WHERE visit_id = ?1",
};

struct store_backend {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	sq_report *rep;                    /* reports, erasure, retention */
	char msg[200];                     /* SQLite's message for the last failure */
};

/* --- helpers --------------------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *s, int i, const char *v) {
	sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);    /* NULL binds NULL */
}

/* Run a statement to the end (rows ignored), then reset it and clear its
 * bindings (they point into the job, which is about to go). Returns
 * SQLITE_DONE or the (extended) error code, message kept in b->msg. */
static int run(store_backend *b, sqlite3_stmt *s) {
	int rc;
	while((rc = sqlite3_step(s)) == SQLITE_ROW)
		;
	if(rc != SQLITE_DONE)
		g_strlcpy(b->msg, sqlite3_errmsg(b->db), sizeof(b->msg));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* Reset a statement stepped by hand (rows read), keeping the error text. */
static int finish(store_backend *b, sqlite3_stmt *s, int rc) {
	if(rc != SQLITE_DONE)
		g_strlcpy(b->msg, sqlite3_errmsg(b->db), sizeof(b->msg));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* Turn a failed step into an rc and a sentence. */
static store_rc fail(store_backend *b, int rc, const char *what,
		char *err, size_t errlen) {
	if(rc == SQLITE_CONSTRAINT_FOREIGNKEY) {
		g_snprintf(err, errlen, "%s: the visit or pulse it refers to is not stored", what);
		return STORE_NOT_FOUND;
	}
	return sq_classify(rc, what, b->msg, err, errlen);
}

store_rc sq_classify(int rc, const char *what, const char *msg, char *err, size_t errlen) {
	switch(rc & 0xff) {
		case SQLITE_BUSY:
		case SQLITE_LOCKED:
			g_snprintf(err, errlen, "%s: the database is locked by another process (%s)", what, msg);
			return STORE_BUSY;
		case SQLITE_FULL:
			g_snprintf(err, errlen, "%s: the disk is full (%s)", what, msg);
			return STORE_UNAVAILABLE;
		case SQLITE_IOERR:
		case SQLITE_CANTOPEN:
		case SQLITE_READONLY:
		case SQLITE_PROTOCOL:
		case SQLITE_NOMEM:
			g_snprintf(err, errlen, "%s: the database cannot be written now (%s)", what, msg);
			return STORE_UNAVAILABLE;
		default:
			g_snprintf(err, errlen, "%s: %s", what, msg);
			return STORE_ERR;
	}
}

static int tx_begin(store_backend *b) {
	return run(b, b->st[ST_BEGIN]);
}

/* Commit if everything went well, else roll back; returns the final rc. */
static store_rc tx_end(store_backend *b, store_rc rc, char *err, size_t errlen) {
	if(rc == STORE_OK) {
		int r = run(b, b->st[ST_COMMIT]);
		if(r == SQLITE_DONE)
			return STORE_OK;
		rc = fail(b, r, "commit", err, errlen);
	}
	if(!sqlite3_get_autocommit(b->db))
		run(b, b->st[ST_ROLLBACK]);
	return rc;
}

/* A single-statement job: autocommit makes it its own transaction. */
static store_rc run_one(store_backend *b, sqlite3_stmt *s, const char *what,
		char *err, size_t errlen) {
	int rc = run(b, s);
	return rc == SQLITE_DONE ? STORE_OK : fail(b, rc, what, err, errlen);
}

typedef struct pulse_state {
	gboolean found, has_answer, final, dismissed;
	char status[16];
} pulse_state;

static int read_pulse(store_backend *b, const char *pulse_id, pulse_state *ps) {
	memset(ps, 0, sizeof(*ps));
	sqlite3_stmt *s = b->st[ST_PULSE_READ];
	bind_text(s, 1, pulse_id);
	int rc = sqlite3_step(s);
	if(rc == SQLITE_ROW) {
		ps->found = TRUE;
		const unsigned char *status = sqlite3_column_text(s, 0);
		g_strlcpy(ps->status, status ? (const char *)status : "", sizeof(ps->status));
		ps->has_answer = sqlite3_column_int(s, 1) != 0;
		ps->final = sqlite3_column_int(s, 2) != 0;
		ps->dismissed = sqlite3_column_int(s, 3) != 0;
		rc = SQLITE_DONE;
	} else if(rc != SQLITE_DONE) {
		g_strlcpy(b->msg, sqlite3_errmsg(b->db), sizeof(b->msg));
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc;
}

/* Read the pulse inside the open transaction: STORE_OK if it exists and
 * is open, else the refusal. */
static store_rc open_pulse(store_backend *b, const char *pulse_id, const char *what,
		pulse_state *ps, char *err, size_t errlen) {
	int rc = read_pulse(b, pulse_id, ps);
	if(rc != SQLITE_DONE)
		return fail(b, rc, what, err, errlen);
	if(!ps->found) {
		g_snprintf(err, errlen, "pulse %s is not stored", pulse_id);
		return STORE_NOT_FOUND;
	}
	if(store_rows_pulse_closed(pulse_id, ps->status, ps->final, ps->dismissed, err, errlen))
		return STORE_ALREADY_FINAL;
	return STORE_OK;
}

static int set_pulse_status(store_backend *b, const char *pulse_id,
		const char *status, gint64 at_us) {
	sqlite3_stmt *s = b->st[ST_PULSE_SET_STATUS];
	bind_text(s, 1, pulse_id);
	bind_text(s, 2, status);
	sqlite3_bind_int64(s, 3, at_us);
	return run(b, s);
}

/* --- operations ------------------------------------------------------------------------- */

static store_rc sq_visit_create(store_backend *b, const store_visit_rec *r,
		char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_VISIT_INSERT];
	bind_text(s, 1, r->visit_id);
	bind_text(s, 2, r->therapist_code);
	bind_text(s, 3, r->client_code);
	bind_text(s, 4, r->modality);
	sqlite3_bind_int64(s, 5, r->created_at_us);
	bind_text(s, 6, r->instance_id);
	bind_text(s, 7, r->invite_sha256);
	return run_one(b, s, "visit_create", err, errlen);
}

/* An UPDATE of one visit row (visit_id, a text, a time): STORE_NOT_FOUND
 * when it changed no row (`why` says more). */
static store_rc visit_update(store_backend *b, sqlite3_stmt *s, const char *what, const char *visit_id,
		const char *text, gint64 at_us, const char *why, char *err, size_t errlen) {
	bind_text(s, 1, visit_id);
	bind_text(s, 2, text);
	sqlite3_bind_int64(s, 3, at_us);
	store_rc rc = run_one(b, s, what, err, errlen);
	if(rc == STORE_OK && sqlite3_changes(b->db) == 0) {
		g_snprintf(err, errlen, "visit %s is not stored%s", visit_id, why);
		return STORE_NOT_FOUND;
	}
	return rc;
}

static store_rc sq_visit_state(store_backend *b, const char *visit_id,
		const char *state, gint64 at_us, char *err, size_t errlen) {
	return visit_update(b, b->st[ST_VISIT_STATE], "visit_state", visit_id, state, at_us, "", err, errlen);
}

static store_rc sq_visit_ended(store_backend *b, const char *visit_id,
		const char *end_reason, gint64 at_us, char *err, size_t errlen) {
	return visit_update(b, b->st[ST_VISIT_ENDED], "visit_ended", visit_id, end_reason, at_us,
		" (or closed)", err, errlen);
}

typedef struct open_visit {
	char *id;
	gint64 last;
} open_visit;

static void open_visit_free(gpointer p) {
	open_visit *o = p;
	g_free(o->id);
	g_free(o);
}

static store_rc sq_repair(store_backend *b, const char *instance_id, gint64 now_us,
		gint64 *visits, char *err, size_t errlen) {
	*visits = 0;
	int rc = tx_begin(b);
	if(rc != SQLITE_DONE)
		return fail(b, rc, "repair", err, errlen);
	GPtrArray *open = g_ptr_array_new_with_free_func(open_visit_free);
	sqlite3_stmt *s = b->st[ST_OPEN_VISITS];
	bind_text(s, 1, instance_id);
	while((rc = sqlite3_step(s)) == SQLITE_ROW) {
		open_visit *o = g_new0(open_visit, 1);
		o->id = g_strdup((const char *)sqlite3_column_text(s, 0));
		o->last = sqlite3_column_int64(s, 1);
		g_ptr_array_add(open, o);
	}
	rc = finish(b, s, rc);
	store_rc out = rc == SQLITE_DONE ? STORE_OK : fail(b, rc, "repair", err, errlen);
	for(guint i = 0; out == STORE_OK && i < open->len; i++) {
		open_visit *o = open->pdata[i];
		gint64 last = o->last < now_us ? o->last : now_us;
		sqlite3_stmt *steps[3] = { b->st[ST_REPAIR_PULSES], b->st[ST_REPAIR_INCIDENTS], b->st[ST_REPAIR_VISIT] };
		for(int k = 0; k < 3 && out == STORE_OK; k++) {
			bind_text(steps[k], 1, o->id);
			sqlite3_bind_int64(steps[k], 2, last);
			if(k == 2)
				sqlite3_bind_int64(steps[k], 3, now_us);
			if((rc = run(b, steps[k])) != SQLITE_DONE)
				out = fail(b, rc, "repair", err, errlen);
		}
		if(out == STORE_OK)
			out = sq_report_summarize(b->rep, o->id, err, errlen);
	}
	if(out == STORE_OK)
		*visits = open->len;
	g_ptr_array_free(open, TRUE);
	return tx_end(b, out, err, errlen);
}

static store_rc sq_instance_seen(store_backend *b, const char *instance_id,
		const char *servers_json, gint64 started_at_us, gint64 seen_at_us,
		char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_INSTANCE_SEEN];
	bind_text(s, 1, instance_id);
	bind_text(s, 2, servers_json);
	sqlite3_bind_int64(s, 3, started_at_us);
	sqlite3_bind_int64(s, 4, seen_at_us);
	return run_one(b, s, "instance_seen", err, errlen);
}

/* A read (analytics lane): outside a transaction, one statement is one
 * consistent snapshot. */
static store_rc sq_visit_locate(store_backend *b, const char *visit_id,
		const char *invite_sha256, char **instance_id, char **servers_json,
		char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_VISIT_LOCATE];
	bind_text(s, 1, visit_id);
	bind_text(s, 2, invite_sha256);
	int rc = sqlite3_step(s);
	if(rc == SQLITE_ROW) {
		*instance_id = g_strdup((const char *)sqlite3_column_text(s, 0));
		*servers_json = g_strdup((const char *)sqlite3_column_text(s, 1));
		rc = SQLITE_DONE;
	} else if(rc == SQLITE_DONE) {
		finish(b, s, rc);
		g_snprintf(err, errlen, "no open visit matches");
		return STORE_NOT_FOUND;
	}
	rc = finish(b, s, rc);
	return rc == SQLITE_DONE ? STORE_OK : fail(b, rc, "visit_locate", err, errlen);
}

static store_rc sq_participant_join(store_backend *b, const char *visit_id,
		const char *role, const char *code, gboolean research_consent,
		const char *language, gint64 at_us, char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_PARTICIPANT_INSERT];
	bind_text(s, 1, visit_id);
	bind_text(s, 2, role);
	bind_text(s, 3, code);
	sqlite3_bind_int(s, 4, research_consent ? 1 : 0);
	bind_text(s, 5, language);
	sqlite3_bind_int64(s, 6, at_us);
	return run_one(b, s, "participant_join", err, errlen);
}

static store_rc sq_pulse_create(store_backend *b, const store_pulse_rec *r,
		char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_PULSE_INSERT];
	bind_text(s, 1, r->pulse_id);
	bind_text(s, 2, r->visit_id);
	bind_text(s, 3, r->role);
	bind_text(s, 4, r->kind);
	bind_text(s, 5, r->instrument_id);
	bind_text(s, 6, r->instrument_version);
	bind_text(s, 7, r->language);
	bind_text(s, 8, r->trigger);
	bind_text(s, 9, r->delivered_via);
	sqlite3_bind_int64(s, 10, r->created_at_us);
	if(r->expires_at_us > 0)
		sqlite3_bind_int64(s, 11, r->expires_at_us);
	else
		sqlite3_bind_null(s, 11);
	return run_one(b, s, "pulse_create", err, errlen);
}

static store_rc sq_pulse_status(store_backend *b, const char *pulse_id,
		const char *status, gint64 at_us, char *err, size_t errlen) {
	int rc = tx_begin(b);
	if(rc != SQLITE_DONE)
		return fail(b, rc, "pulse_status", err, errlen);
	/* "delivered:<via>" (store_pulse_delivered) also records how it went
	 * out, if that was not known when the pulse was created */
	const char *via = NULL;
	if(g_str_has_prefix(status, "delivered:")) {
		via = status + strlen("delivered:");
		status = "delivered";
	}
	pulse_state ps;
	store_rc out = open_pulse(b, pulse_id, "pulse_status", &ps, err, errlen);
	/* delivery never moves a pulse backwards: only pending -> delivered */
	gboolean change = strcmp(status, "delivered") != 0 || strcmp(ps.status, "pending") == 0;
	if(out == STORE_OK && change) {
		rc = set_pulse_status(b, pulse_id, status, at_us);
		if(rc != SQLITE_DONE)
			out = fail(b, rc, "pulse_status", err, errlen);
	}
	if(out == STORE_OK && via) {
		sqlite3_stmt *st = b->st[ST_PULSE_SET_VIA];
		bind_text(st, 1, pulse_id);
		bind_text(st, 2, via);
		if((rc = run(b, st)) != SQLITE_DONE)
			out = fail(b, rc, "pulse_status", err, errlen);
	}
	return tx_end(b, out, err, errlen);
}

static store_rc sq_answer(store_backend *b, const store_answer_rec *r,
		char *err, size_t errlen) {
	int rc = tx_begin(b);
	if(rc != SQLITE_DONE)
		return fail(b, rc, "answer", err, errlen);
	pulse_state ps;
	store_rc out = open_pulse(b, r->pulse_id, "answer", &ps, err, errlen);
	if(out != STORE_OK)
		goto done;
	sqlite3_stmt *s = b->st[ps.has_answer ? ST_ANSWER_UPDATE : ST_ANSWER_INSERT];
	bind_text(s, 1, r->pulse_id);
	sqlite3_bind_int64(s, 2, r->answered_at_us);
	sqlite3_bind_int64(s, 3, r->time_to_answer_ms);
	sqlite3_bind_int(s, 4, r->research_consent ? 1 : 0);
	if((rc = run(b, s)) != SQLITE_DONE) {
		out = fail(b, rc, "answer", err, errlen);
		goto done;
	}
	s = b->st[ST_ANSWER_ITEM];
	for(int i = 0; i < r->n_items; i++) {
		bind_text(s, 1, r->pulse_id);
		bind_text(s, 2, r->items[i].item_id);
		sqlite3_bind_double(s, 3, r->items[i].value);
		if((rc = run(b, s)) != SQLITE_DONE) {
			out = fail(b, rc, "answer item", err, errlen);
			goto done;
		}
	}
	if(r->final) {
		s = b->st[ST_ANSWER_FINAL];
		bind_text(s, 1, r->pulse_id);
		if((rc = run(b, s)) != SQLITE_DONE) {
			out = fail(b, rc, "answer", err, errlen);
			goto done;
		}
		s = b->st[ST_SCORE_INSERT];
		for(int i = 0; i < r->n_scores; i++) {
			bind_text(s, 1, r->pulse_id);
			bind_text(s, 2, r->scores[i].name);
			sqlite3_bind_double(s, 3, r->scores[i].value);
			if((rc = run(b, s)) != SQLITE_DONE) {
				out = fail(b, rc, "answer score", err, errlen);
				goto done;
			}
		}
	}
	rc = set_pulse_status(b, r->pulse_id, r->final ? "answered" : "partial",
		r->answered_at_us);
	if(rc != SQLITE_DONE)
		out = fail(b, rc, "answer", err, errlen);
done:
	return tx_end(b, out, err, errlen);
}

static store_rc sq_dismiss(store_backend *b, const char *pulse_id, gint64 at_us,
		char *err, size_t errlen) {
	int rc = tx_begin(b);
	if(rc != SQLITE_DONE)
		return fail(b, rc, "dismiss", err, errlen);
	pulse_state ps;
	store_rc out = open_pulse(b, pulse_id, "dismiss", &ps, err, errlen);
	if(out != STORE_OK)
		goto done;
	sqlite3_stmt *s = b->st[ps.has_answer ? ST_DISMISS_UPDATE : ST_DISMISS_INSERT];
	bind_text(s, 1, pulse_id);
	sqlite3_bind_int64(s, 2, at_us);
	if((rc = run(b, s)) != SQLITE_DONE) {
		out = fail(b, rc, "dismiss", err, errlen);
		goto done;
	}
	if((rc = set_pulse_status(b, pulse_id, "dismissed", at_us)) != SQLITE_DONE)
		out = fail(b, rc, "dismiss", err, errlen);
done:
	return tx_end(b, out, err, errlen);
}

static store_rc sq_alert(store_backend *b, const store_alert_rec *r,
		char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_ALERT_INSERT];
	bind_text(s, 1, r->visit_id);
	bind_text(s, 2, r->pulse_id);
	bind_text(s, 3, r->rule);
	bind_text(s, 4, r->score_name);
	sqlite3_bind_double(s, 5, r->score);
	sqlite3_bind_double(s, 6, r->threshold);
	bind_text(s, 7, r->quality_json);
	sqlite3_bind_int64(s, 8, r->at_us);
	return run_one(b, s, "alert", err, errlen);
}

static store_rc sq_event(store_backend *b, const char *visit_id, const char *kind,
		const char *detail_json, gint64 at_us, char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_EVENT_INSERT];
	bind_text(s, 1, visit_id);
	bind_text(s, 2, kind);
	bind_text(s, 3, detail_json);
	sqlite3_bind_int64(s, 4, at_us);
	return run_one(b, s, "event", err, errlen);
}

static guint sq_samples(store_backend *b, const store_sample_rec *r, guint n) {
	if(tx_begin(b) != SQLITE_DONE)
		return n;
	guint failed = 0;
	sqlite3_stmt *s = b->st[ST_SAMPLE_INSERT];
	for(guint i = 0; i < n; i++) {
		bind_text(s, 1, r[i].visit_id);
		bind_text(s, 2, r[i].leg);
		bind_text(s, 3, r[i].medium);
		sqlite3_bind_int64(s, 4, r[i].at_us);
		bind_text(s, 5, r[i].metrics_json);
		if(run(b, s) != SQLITE_DONE) {
			/* a constraint failure undoes only that statement; anything
			 * that ended the transaction loses the whole batch */
			if(sqlite3_get_autocommit(b->db))
				return n;
			failed++;
		}
	}
	if(run(b, b->st[ST_COMMIT]) != SQLITE_DONE) {
		if(!sqlite3_get_autocommit(b->db))
			run(b, b->st[ST_ROLLBACK]);
		return n;
	}
	return failed;
}

static store_rc sq_client_scores(store_backend *b, const char *client_code,
		const char *instrument_id, const char *score_name,
		const char *exclude_visit_id, int limit, GArray *out,
		char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_CLIENT_SCORES];
	bind_text(s, 1, client_code);
	bind_text(s, 2, instrument_id);
	bind_text(s, 3, score_name);
	bind_text(s, 4, exclude_visit_id);
	sqlite3_bind_int(s, 5, limit > 0 ? limit : -1);      /* -1: no limit */
	int rc;
	while((rc = sqlite3_step(s)) == SQLITE_ROW) {
		double v = sqlite3_column_double(s, 0);
		g_array_append_val(out, v);
	}
	if(rc != SQLITE_DONE)
		g_strlcpy(b->msg, sqlite3_errmsg(b->db), sizeof(b->msg));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if(rc != SQLITE_DONE) {
		g_array_set_size(out, 0);
		return fail(b, rc, "client_scores", err, errlen);
	}
	return STORE_OK;
}

static store_rc sq_pulse_quality(store_backend *b, const char *pulse_id,
		const char *quality_json, char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_PULSE_QUALITY];
	bind_text(s, 1, pulse_id);
	bind_text(s, 2, quality_json);
	store_rc rc = run_one(b, s, "pulse_quality", err, errlen);
	if(rc == STORE_OK && sqlite3_changes(b->db) == 0) {
		g_snprintf(err, errlen, "pulse %s is not stored", pulse_id);
		return STORE_NOT_FOUND;
	}
	return rc;
}

static store_rc sq_incident(store_backend *b, const store_incident_rec *r,
		char *err, size_t errlen) {
	sqlite3_stmt *s = b->st[ST_INCIDENT_INSERT];
	bind_text(s, 1, r->visit_id);
	bind_text(s, 2, r->leg);
	bind_text(s, 3, r->medium);
	bind_text(s, 4, r->kind);
	sqlite3_bind_int64(s, 5, r->started_at_us);
	if(r->ended_at_us != 0)
		sqlite3_bind_int64(s, 6, r->ended_at_us);
	else
		sqlite3_bind_null(s, 6);      /* still open */
	bind_text(s, 7, r->detail_json);
	return run_one(b, s, "incident", err, errlen);
}

static json_t *stored_object(sqlite3_stmt *s, int col) {
	return store_rows_object((const char *)sqlite3_column_text(s, col));
}

/* Finish a SELECT: SQLITE_DONE, or the error with its message in b->msg. */
static store_rc sq_visit_quality(store_backend *b, const char *visit_id,
		json_t **out, char *err, size_t errlen) {
	*out = NULL;
	int rc = run(b, b->st[ST_BEGIN_READ]);
	if(rc != SQLITE_DONE)
		return fail(b, rc, "visit_quality", err, errlen);
	store_rc res = STORE_OK;
	json_t *pulses = json_array(), *incidents = json_array();
	json_int_t samples = 0;

	sqlite3_stmt *s = b->st[ST_VISIT_EXISTS];
	bind_text(s, 1, visit_id);
	rc = sqlite3_step(s);
	gboolean found = rc == SQLITE_ROW;
	if((rc = finish(b, s, rc == SQLITE_ROW ? SQLITE_DONE : rc)) != SQLITE_DONE)
		goto failed;
	if(!found) {
		g_snprintf(err, errlen, "visit %s is not stored", visit_id);
		res = STORE_NOT_FOUND;
		goto done;
	}

	s = b->st[ST_VISIT_PULSE_QUALITY];
	bind_text(s, 1, visit_id);
	while((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(pulses, json_pack("{s:s, s:o}",
			"pulse_id", (const char *)sqlite3_column_text(s, 0),
			"quality", stored_object(s, 1)));
	if((rc = finish(b, s, rc)) != SQLITE_DONE)
		goto failed;

	s = b->st[ST_VISIT_INCIDENTS];
	bind_text(s, 1, visit_id);
	while((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(incidents, store_rows_incident(
			(const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1),
			(const char *)sqlite3_column_text(s, 2), sqlite3_column_int64(s, 3),
			sqlite3_column_type(s, 4) == SQLITE_NULL ? -1 : sqlite3_column_int64(s, 4),
			(const char *)sqlite3_column_text(s, 5)));
	if((rc = finish(b, s, rc)) != SQLITE_DONE)
		goto failed;

	s = b->st[ST_VISIT_SAMPLES];
	bind_text(s, 1, visit_id);
	rc = sqlite3_step(s);
	if(rc == SQLITE_ROW) {
		samples = (json_int_t)sqlite3_column_int64(s, 0);
		rc = SQLITE_DONE;
	}
	if((rc = finish(b, s, rc)) != SQLITE_DONE)
		goto failed;
	goto done;
failed:
	res = fail(b, rc, "visit_quality", err, errlen);
done:
	res = tx_end(b, res, err, errlen);
	if(res == STORE_OK)
		return (*out = store_rows_quality(pulses, incidents, samples, err, errlen)) ? STORE_OK : STORE_ERR;
	json_decref(pulses);
	json_decref(incidents);
	return res;
}

static store_rc sq_visit_summarize(store_backend *b, const char *visit_id,
		char *err, size_t errlen) {
	return sq_report_summarize(b->rep, visit_id, err, errlen);
}

static store_rc sq_forget_client(store_backend *b, const char *client_code,
		gint64 at_us, gint64 *rows, char *err, size_t errlen) {
	return sq_report_forget(b->rep, client_code, at_us, rows, err, errlen);
}

static store_rc sq_retention(store_backend *b, int days, gint64 now_us,
		gint64 *rows, char *err, size_t errlen) {
	return sq_report_retention(b->rep, days, now_us, rows, err, errlen);
}

static store_rc sq_report_read(store_backend *b, store_report_what what,
		const store_report_filter *f, store_row_cb row, void *user,
		char *err, size_t errlen) {
	return sq_report_rows(b->rep, what, f, row, user, err, errlen);
}

static void sq_close(store_backend *b) {
	if(b == NULL)
		return;
	sq_report_free(b->rep);
	for(int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(b->st[i]);
	sqlite3_close(b->db);              /* checkpoints and removes the -wal */
	g_free(b);
}

static const store_backend_ops sqlite_ops = {
	.name = "sqlite",
	.visit_create = sq_visit_create,
	.visit_state = sq_visit_state,
	.visit_ended = sq_visit_ended,
	.repair = sq_repair,
	.instance_seen = sq_instance_seen,
	.visit_locate = sq_visit_locate,
	.participant_join = sq_participant_join,
	.pulse_create = sq_pulse_create,
	.pulse_status = sq_pulse_status,
	.answer = sq_answer,
	.dismiss = sq_dismiss,
	.alert = sq_alert,
	.event = sq_event,
	.samples = sq_samples,
	.client_scores = sq_client_scores,
	.pulse_quality = sq_pulse_quality,
	.incident = sq_incident,
	.visit_quality = sq_visit_quality,
	.visit_summarize = sq_visit_summarize,
	.forget_client = sq_forget_client,
	.retention = sq_retention,
	.report_rows = sq_report_read,
	.close = sq_close,
};

/* --- opening ----------------------------------------------------------------------------- */

/* An existing file (db, -wal or -shm) that group or others may access is
 * brought to 0600; a note goes into warn. Missing files are fine. */
static int tighten(const char *p, GString *warn, char *err, size_t errlen) {
	struct stat s;
	if(stat(p, &s) != 0)
		return 0;
	if((s.st_mode & 077) == 0)
		return 0;
	if(chmod(p, 0600) != 0) {
		g_snprintf(err, errlen, "db_path %s has mode %04o (group/others may read it) and "
			"cannot be changed to 0600: %s", p, (unsigned)(s.st_mode & 07777), g_strerror(errno));
		return -1;
	}
	g_string_append_printf(warn, "%sdb_path %s had mode %04o (group/others could read it); "
		"changed to 0600", warn->len ? "; " : "", p, (unsigned)(s.st_mode & 07777));
	return 0;
}

/* Make sure the folder exists and is writable, and that the file exists
 * with mode 0600 before SQLite opens it. */
static int prepare_file(const char *path, GString *warn, char *err, size_t errlen) {
	int ret = -1;
	char *dir = g_path_get_dirname(path);
	struct stat sd;
	if(stat(dir, &sd) != 0) {
		if(errno == ENOENT)
			g_snprintf(err, errlen, "db_path folder %s does not exist", dir);
		else
			g_snprintf(err, errlen, "db_path folder %s cannot be used: %s", dir, g_strerror(errno));
		goto out;
	}
	if(!S_ISDIR(sd.st_mode)) {
		g_snprintf(err, errlen, "db_path folder %s is not a folder", dir);
		goto out;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if(fd >= 0) {
		int frc = fchmod(fd, 0600);    /* whatever the umask left */
		close(fd);
		if(frc != 0) {
			g_snprintf(err, errlen, "db_path %s: cannot set mode 0600: %s", path, g_strerror(errno));
			goto out;
		}
	} else if(errno == EEXIST) {
		struct stat sf;
		if(stat(path, &sf) != 0 || !S_ISREG(sf.st_mode)) {
			g_snprintf(err, errlen, "db_path %s is not a regular file", path);
			goto out;
		}
		if(access(path, R_OK | W_OK) != 0) {
			g_snprintf(err, errlen, "db_path %s is read-only (%s)", path, g_strerror(errno));
			goto out;
		}
		char *wal = g_strconcat(path, "-wal", NULL), *shm = g_strconcat(path, "-shm", NULL);
		int trc = tighten(path, warn, err, errlen);
		if(trc == 0)
			trc = tighten(wal, warn, err, errlen);
		if(trc == 0)
			trc = tighten(shm, warn, err, errlen);
		g_free(wal);
		g_free(shm);
		if(trc != 0)
			goto out;
	} else if(errno == EACCES || errno == EPERM || errno == EROFS) {
		g_snprintf(err, errlen, "db_path folder %s is read-only (cannot create %s: %s)",
			dir, path, g_strerror(errno));
		goto out;
	} else {
		g_snprintf(err, errlen, "db_path %s cannot be created: %s", path, g_strerror(errno));
		goto out;
	}
	/* WAL mode creates and deletes the -wal and -shm files next to it */
	if(access(dir, W_OK) != 0) {
		g_snprintf(err, errlen, "db_path folder %s is read-only (SQLite needs to create "
			"the -wal and -shm files there: %s)", dir, g_strerror(errno));
		goto out;
	}
	ret = 0;
out:
	g_free(dir);
	return ret;
}

/* A sentence for a failure of SQLite itself while opening. */
static void describe(sqlite3 *db, int rc, const char *path, const char *detail,
		char *err, size_t errlen) {
	const char *msg = detail ? detail : (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	switch(rc & 0xff) {
		case SQLITE_NOTADB:
		case SQLITE_CORRUPT:
			g_snprintf(err, errlen, "db_path %s is not an SQLite database (file is corrupt?)", path);
			break;
		case SQLITE_READONLY:
			g_snprintf(err, errlen, "db_path %s is read-only (%s)", path, msg);
			break;
		case SQLITE_CANTOPEN:
			g_snprintf(err, errlen, "db_path %s cannot be opened (%s)", path, msg);
			break;
		case SQLITE_BUSY:
		case SQLITE_LOCKED:
			g_snprintf(err, errlen, "db_path %s is locked by another process (%s)", path, msg);
			break;
		default:
			g_snprintf(err, errlen, "db_path %s: %s", path, msg);
	}
}

void store_sqlite_memory(gint64 *used, gint64 *peak) {
	sqlite3_int64 cur = 0, hi = 0;
	if(sqlite3_status64(SQLITE_STATUS_MEMORY_USED, &cur, &hi, 0) != SQLITE_OK)
		cur = hi = 0;
	*used = (gint64)cur;
	*peak = (gint64)hi;
}

/* the writer connection's page cache, KiB (see store_sqlite_open) */
#define WRITER_CACHE_KIB 512

/* Run one PRAGMA that returns a text row (or none), copying it to out. */
static int pragma(sqlite3 *db, const char *sql, char *out, size_t outlen) {
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if(rc == SQLITE_OK) {
		rc = sqlite3_step(s);
		if(rc == SQLITE_ROW || rc == SQLITE_DONE) {
			const unsigned char *t = rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : NULL;
			if(out)
				g_strlcpy(out, t ? (const char *)t : "", outlen);
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(s);
	return rc;
}

static int configure_connection(sqlite3 *db, const char *path, char *err, size_t errlen) {
	char mode[32];
	int rc = pragma(db, "PRAGMA journal_mode = WAL", mode, sizeof(mode));
	if(rc != SQLITE_OK) {
		describe(db, rc, path, NULL, err, errlen);
		return -1;
	}
	if(g_ascii_strcasecmp(mode, "wal") != 0) {
		g_snprintf(err, errlen, "db_path %s cannot be put in WAL mode (journal mode stays "
			"\"%s\"); is it on a network file system?", path, mode);
		return -1;
	}
	static const char *const settings[] = {
		"PRAGMA synchronous = FULL",   /* WAL + FULL: a commit survives power loss */
		"PRAGMA foreign_keys = ON",
		"PRAGMA secure_delete = ON",   /* erased health data is overwritten */
		"PRAGMA trusted_schema = OFF",
	};
	for(size_t i = 0; i < G_N_ELEMENTS(settings); i++) {
		if((rc = pragma(db, settings[i], NULL, 0)) != SQLITE_OK) {
			describe(db, rc, path, NULL, err, errlen);
			return -1;
		}
	}
	char on[8];
	if(pragma(db, "PRAGMA foreign_keys", on, sizeof(on)) != SQLITE_OK || strcmp(on, "1") != 0) {
		g_snprintf(err, errlen, "db_path %s: this SQLite cannot enforce foreign keys", path);
		return -1;
	}
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	return 0;
}

/* Prepare every statement of a connection into a new backend (which then
 * owns db); NULL with err on failure (db is closed then). */
static store_backend *sq_wrap(sqlite3 *db, const char *path, char *err, size_t errlen) {
	store_backend *b = g_new0(store_backend, 1);
	b->db = db;
	for(int i = 0; i < ST__COUNT; i++) {
		int rc = sqlite3_prepare_v3(db, statement_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &b->st[i], NULL);
		if(rc != SQLITE_OK) {
			g_snprintf(err, errlen, "db_path %s: cannot prepare statement %d: %s",
				path, i, sqlite3_errmsg(db));
			sq_close(b);
			return NULL;
		}
	}
	char rerr[256];
	if((b->rep = sq_report_prepare(db, rerr, sizeof(rerr))) == NULL) {
		g_snprintf(err, errlen, "db_path %s: %s", path, rerr);
		sq_close(b);
		return NULL;
	}
	return b;
}

/* The schema version of a database, read without changing anything. */
static int sq_schema_version(sqlite3 *db) {
	sqlite3_stmt *s = NULL;
	int v = -1;
	if(sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &s, NULL) == SQLITE_OK
			&& sqlite3_step(s) == SQLITE_ROW)
		v = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return v;
}

/* A database another process (the plugin) writes, opened to read only:
 * the file is not touched (no mode change, no migration, no backfill), the
 * connection is SQLite read-only, every write job is refused. With
 * `erasure`: the same, but the connection may write (alliance-report
 * --forget: one erasure, in a transaction of its own). */
static store *open_for_reading(const char *path, gboolean erasure, char *err, size_t errlen) {
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, (erasure ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY)
		| SQLITE_OPEN_NOMUTEX, NULL);
	if(rc != SQLITE_OK) {
		describe(db, rc, path, NULL, err, errlen);
		sqlite3_close(db);
		return NULL;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
	if(erasure && (sqlite3_db_readonly(db, "main") == 1 || configure_connection(db, path, err, errlen) != 0)) {
		if(!err[0])
			g_snprintf(err, errlen, "db_path %s is read-only", path);
		sqlite3_close(db);
		return NULL;
	}
	int v = sq_schema_version(db);
	if(v != STORE_SCHEMA_VERSION) {
		if(v < 0)
			g_snprintf(err, errlen, "db_path %s is not an Alliance Pulse database (no schema_version)", path);
		else
			g_snprintf(err, errlen, "db_path %s has schema version %d, this build reads %d%s", path, v,
				STORE_SCHEMA_VERSION, v < STORE_SCHEMA_VERSION ?
				" (start the plugin once to upgrade it; this tool never writes)" : "");
		sqlite3_close(db);
		return NULL;
	}
	store_backend *b = sq_wrap(db, path, err, errlen);
	if(b == NULL)
		return NULL;
	return store_start(path, &sqlite_ops, b, NULL, erasure ? 0 : STORE_START_READ_ONLY, NULL, err, errlen);
}

store *store_sqlite_open_ex(const char *path, unsigned flags, char *err, size_t errlen) {
	if(err && errlen)
		err[0] = '\0';
	if(path == NULL || path[0] == '\0') {
		g_snprintf(err, errlen, "db_path is empty");
		return NULL;
	}
	if(flags & (STORE_SQLITE_OPEN_FOR_READING | STORE_SQLITE_OPEN_FOR_ERASURE))
		return open_for_reading(path, (flags & STORE_SQLITE_OPEN_FOR_ERASURE) != 0, err, errlen);
	GString *warn = g_string_new(NULL);
	sqlite3 *db = NULL, *rdb = NULL;
	store_backend *b = NULL, *reader = NULL;
	store *st = NULL;
	if(prepare_file(path, warn, err, errlen) != 0)
		goto fail;
	int oflags = (flags & STORE_SQLITE_OPEN_READONLY) ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
	/* one thread at a time uses each connection (this one, then only its
	 * lane's thread), so SQLite's own per-call mutex is pure cost: the
	 * exports make ~30 API calls per row */
	oflags |= SQLITE_OPEN_NOMUTEX;
	int rc = sqlite3_open_v2(path, &db, oflags, NULL);
	if(rc != SQLITE_OK) {
		describe(db, rc, path, NULL, err, errlen);
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	/* SQLite silently opens a file it may not write read-only */
	if(sqlite3_db_readonly(db, "main") == 1) {
		g_snprintf(err, errlen, "db_path %s is read-only", path);
		goto fail;
	}
	if(configure_connection(db, path, err, errlen) != 0)
		goto fail;
	if((flags & STORE_SQLITE_OPEN_NOT_DURABLE) && pragma(db, "PRAGMA synchronous = OFF", NULL, 0) != SQLITE_OK)
		goto fail;
	/* The writer appends (samples, answers, events) and looks rows up by key:
	 * it touches the right edge of each B-tree, a few hundred KiB. SQLite's
	 * default cache (2 MB per connection) only filled with pages it never
	 * reads again, which looked like memory growth for the first ~10 minutes
	 * of every run (bench/README.md, "Soak"). The analytics connection keeps
	 * the default: reports scan. */
	if((rc = pragma(db, "PRAGMA cache_size = -" G_STRINGIFY(WRITER_CACHE_KIB), NULL, 0)) != SQLITE_OK) {
		describe(db, rc, path, NULL, err, errlen);
		goto fail;
	}
	char merr[200];
	int src;
	if(store_sqlite_migrate(db, store_sqlite_migrations, store_sqlite_n_migrations,
			&src, merr, sizeof(merr)) < 0) {
		int prim = src & 0xff;
		if(prim == SQLITE_NOTADB || prim == SQLITE_CORRUPT || prim == SQLITE_READONLY
				|| prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
			describe(db, src, path, merr, err, errlen);
		else
			g_snprintf(err, errlen, "db_path %s %s", path, merr);
		goto fail;
	}
	b = sq_wrap(db, path, err, errlen);
	db = NULL;                         /* b owns it (or closed it) */
	if(b == NULL)
		goto fail;
	char rerr[256];
	if(sq_report_backfill(b->rep, rerr, sizeof(rerr)) < 0) {
		g_snprintf(err, errlen, "db_path %s: %s", path, rerr);
		goto fail;
	}
	/* the analytics lane's own connection: reports, exports, erasure and
	 * retention run on it, so they never hold up the writer (WAL readers
	 * do not block the writer; erasure takes the write lock briefly) */
	rc = sqlite3_open_v2(path, &rdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if(rc != SQLITE_OK) {
		describe(rdb, rc, path, NULL, err, errlen);
		sqlite3_close(rdb);
		goto fail;
	}
	sqlite3_extended_result_codes(rdb, 1);
	if(configure_connection(rdb, path, err, errlen) != 0) {
		sqlite3_close(rdb);
		goto fail;
	}
	reader = sq_wrap(rdb, path, err, errlen);
	if(reader == NULL)
		goto fail;
	st = store_start(path, &sqlite_ops, b, reader, 0, warn->len ? warn->str : NULL, err, errlen);
	g_string_free(warn, TRUE);
	return st;                         /* store_start closed b and reader on failure */
fail:
	if(b)
		sq_close(b);
	if(db)
		sqlite3_close(db);
	g_string_free(warn, TRUE);
	return NULL;
}

store *store_open_sqlite(const char *path, char *err, size_t errlen) {
	return store_sqlite_open_ex(path, 0, err, errlen);
}

store *store_open_sqlite_for_reading(const char *path, char *err, size_t errlen) {
	return store_sqlite_open_ex(path, STORE_SQLITE_OPEN_FOR_READING, err, errlen);
}

store *store_open_sqlite_for_erasure(const char *path, char *err, size_t errlen) {
	return store_sqlite_open_ex(path, STORE_SQLITE_OPEN_FOR_ERASURE, err, errlen);
}
