/*
 * store_pg_answers.c — the answer rules of the PostgreSQL backend
 * (store.h, "Pulse status and answer rules"): a status change, an answer,
 * a dismissal, each one transaction on its pulse row locked FOR UPDATE.
 *
 * Another instance answering the same pulse waits on that lock; once it
 * may go on, the answer is read in a statement of its own (READ
 * COMMITTED: a fresh snapshot), so it sees what the first one committed:
 * a second final answer is refused STORE_ALREADY_FINAL, a second partial
 * answer merges. The schema's triggers say the same for any other writer.
 */
#include "store_pg.h"
#include "store_rows.h"

#include <string.h>

enum {
	ST_PULSE_LOCK, ST_ANSWER_READ, ST_PULSE_SET_STATUS, ST_PULSE_SET_VIA, ST_ANSWER_INSERT, ST_ANSWER_UPDATE, ST_ANSWER_ITEM, ST_ANSWER_FINAL, ST_SCORE_INSERT, ST_DISMISS_INSERT, ST_DISMISS_UPDATE,
	ST__COUNT
};

#define W TRUE
#define R FALSE
const pg_stmt store_pg_answer_stmts[ST__COUNT] = {
	/* the pulse row locked for the rest of the transaction: another
	 * instance answering the same pulse waits here, then sees the outcome */
	[ST_PULSE_LOCK] = { "ap_pulse_lock",
		"SELECT status FROM pulses WHERE pulse_id = $1 FOR UPDATE", W },
	/* a statement of its own, after the lock: in READ COMMITTED it sees
	 * the answer another transaction committed while this one waited */
	[ST_ANSWER_READ] = { "ap_answer_read",
		"SELECT final, dismissed FROM answers WHERE pulse_id = $1", W },
	[ST_PULSE_SET_STATUS] = { "ap_pulse_set_status",
		"UPDATE pulses SET status = $2, status_at = $3::BIGINT WHERE pulse_id = $1", W },
	[ST_PULSE_SET_VIA] = { "ap_pulse_set_via",
		"UPDATE pulses SET delivered_via = $2 WHERE pulse_id = $1 AND delivered_via IS NULL", W },
	[ST_ANSWER_INSERT] = { "ap_answer_insert",
		"INSERT INTO answers(pulse_id, final, first_at, answered_at, time_to_answer_ms,"
		" research_consent, dismissed) VALUES ($1, 0, $2::BIGINT, $2::BIGINT, $3::BIGINT, $4::SMALLINT, 0)", W },
	[ST_ANSWER_UPDATE] = { "ap_answer_update",
		"UPDATE answers SET answered_at = $2::BIGINT, time_to_answer_ms = $3::BIGINT,"
		" research_consent = $4::SMALLINT WHERE pulse_id = $1", W },
	[ST_ANSWER_ITEM] = { "ap_answer_item",
		"INSERT INTO answer_items(pulse_id, item_id, value) VALUES ($1, $2, $3::FLOAT8)"
		" ON CONFLICT (pulse_id, item_id) DO UPDATE SET value = excluded.value", W },
	[ST_ANSWER_FINAL] = { "ap_answer_final",
		"UPDATE answers SET final = 1 WHERE pulse_id = $1", W },
	[ST_SCORE_INSERT] = { "ap_score_insert",
		"INSERT INTO scores(pulse_id, name, value) VALUES ($1, $2, $3::FLOAT8)", W },
	[ST_DISMISS_INSERT] = { "ap_dismiss_insert",
		"INSERT INTO answers(pulse_id, final, first_at, answered_at, time_to_answer_ms,"
		" research_consent, dismissed) VALUES ($1, 0, $2::BIGINT, $2::BIGINT, NULL, NULL, 1)", W },
	[ST_DISMISS_UPDATE] = { "ap_dismiss_update",
		"UPDATE answers SET dismissed = 1, answered_at = $2::BIGINT WHERE pulse_id = $1", W },
};
#undef W
#undef R
const int store_pg_answer_n_stmts = ST__COUNT;

static PGresult *run(store_backend *b, int st, int n, const char *const *params) {
	return pg_run(b->conn, store_pg_answer_stmts[st].name, n, params, &b->f);
}


typedef struct pulse_state {
	gboolean has_answer, final, dismissed;
	char status[16];
} pulse_state;

/* Lock the pulse and read it and its answer inside the open transaction:
 * STORE_OK if it exists and is open, else the refusal. */
static store_rc open_pulse(store_backend *b, const char *pulse_id, const char *what,
		pulse_state *ps, gboolean *retry, char *err, size_t errlen) {
	memset(ps, 0, sizeof(*ps));
	const char *p[1] = { pulse_id };
	PGresult *res = run(b, ST_PULSE_LOCK, 1, p);
	if(res == NULL)
		return pg_fail(b, what, retry, err, errlen);
	gboolean found = PQntuples(res) > 0;
	if(found)
		g_strlcpy(ps->status, PQgetvalue(res, 0, 0), sizeof(ps->status));
	PQclear(res);
	if(!found) {
		g_snprintf(err, errlen, "pulse %s is not stored", pulse_id);
		return STORE_NOT_FOUND;
	}
	if((res = run(b, ST_ANSWER_READ, 1, p)) == NULL)
		return pg_fail(b, what, retry, err, errlen);
	if(PQntuples(res) > 0) {
		ps->has_answer = TRUE;
		ps->final = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
		ps->dismissed = strcmp(PQgetvalue(res, 0, 1), "1") == 0;
	}
	PQclear(res);
	return store_rows_pulse_closed(pulse_id, ps->status, ps->final, ps->dismissed, err, errlen)
		? STORE_ALREADY_FINAL : STORE_OK;
}

static store_rc step(store_backend *b, int st, int n, const char *const *params,
		const char *what, gboolean *retry, char *err, size_t errlen) {
	return pg_step(b, store_pg_answer_stmts[st].name, n, params, what, retry, err, errlen);
}

static store_rc set_status(store_backend *b, const char *pulse_id, const char *status,
		gint64 at_us, const char *what, gboolean *retry, char *err, size_t errlen) {
	pg_num t;
	const char *p[3] = { pulse_id, status, pg_i64(t, at_us) };
	return step(b, ST_PULSE_SET_STATUS, 3, p, what, retry, err, errlen);
}

typedef struct change_args {
	const char *id, *status;
	gint64 at_us;
} change_args;

static store_rc pulse_status_tx(store_backend *b, const void *args, gboolean *retry,
		char *err, size_t errlen) {
	const change_args *a = args;
	const char *pulse_id = a->id, *status = a->status;
	gint64 at_us = a->at_us;
	pg_num t;
	const char *fpp[3] = { pulse_id, status, pg_i64(t, at_us) };
	char *fp = pg_fingerprint("pulse_status", 3, fpp);
	gboolean done;
	store_rc rc = pg_tx_begin(b, "pulse_status", fp, &done, err, errlen);
	if(rc != STORE_OK || done) {
		g_free(fp);
		return rc;
	}
	/* "delivered:<via>" (store_pulse_delivered) also records how it went
	 * out, if that was not known when the pulse was created */
	const char *via = NULL;
	if(g_str_has_prefix(status, "delivered:")) {
		via = status + strlen("delivered:");
		status = "delivered";
	}
	pulse_state ps;
	rc = open_pulse(b, pulse_id, "pulse_status", &ps, retry, err, errlen);
	/* delivery never moves a pulse backwards: only pending -> delivered */
	gboolean change = strcmp(status, "delivered") != 0 || strcmp(ps.status, "pending") == 0;
	if(rc == STORE_OK && change)
		rc = set_status(b, pulse_id, status, at_us, "pulse_status", retry, err, errlen);
	if(rc == STORE_OK && via) {
		const char *p[2] = { pulse_id, via };
		rc = step(b, ST_PULSE_SET_VIA, 2, p, "pulse_status", retry, err, errlen);
	}
	rc = pg_tx_finish(b, rc, "pulse_status", fp, retry, err, errlen);
	g_free(fp);
	return rc;
}

store_rc pg_pulse_status(store_backend *b, const char *pulse_id,
		const char *status, gint64 at_us, char *err, size_t errlen) {
	change_args a = { pulse_id, status, at_us };
	return pg_retrying(b, pulse_status_tx, &a, err, errlen);
}

/* An answer as one job text: the pulse, the flags and every value. */
static char *answer_fingerprint(const store_answer_rec *r) {
	GString *s = g_string_new(NULL);
	g_string_append_printf(s, "answer\x1f%s\x1f%d\x1f%" G_GINT64_FORMAT "\x1f%" G_GINT64_FORMAT
		"\x1f%d", r->pulse_id, r->final ? 1 : 0, r->answered_at_us, r->time_to_answer_ms,
		r->research_consent ? 1 : 0);
	for(int i = 0; i < r->n_items; i++)
		g_string_append_printf(s, "\x1f%s=%.17g", r->items[i].item_id, r->items[i].value);
	for(int i = 0; r->final && i < r->n_scores; i++)
		g_string_append_printf(s, "\x1e%s=%.17g", r->scores[i].name, r->scores[i].value);
	return g_string_free(s, FALSE);
}

static store_rc answer_tx(store_backend *b, const void *args, gboolean *retry,
		char *err, size_t errlen) {
	const store_answer_rec *r = args;
	char *fp = answer_fingerprint(r);
	gboolean done;
	store_rc rc = pg_tx_begin(b, "answer", fp, &done, err, errlen);
	if(rc != STORE_OK || done) {
		g_free(fp);
		return rc;
	}
	pulse_state ps;
	pg_num t, ms, v;
	if((rc = open_pulse(b, r->pulse_id, "answer", &ps, retry, err, errlen)) != STORE_OK)
		goto done;
	const char *p[4] = { r->pulse_id, pg_i64(t, r->answered_at_us), pg_i64(ms, r->time_to_answer_ms),
		r->research_consent ? "1" : "0" };
	rc = step(b, ps.has_answer ? ST_ANSWER_UPDATE : ST_ANSWER_INSERT, 4, p, "answer", retry, err, errlen);
	for(int i = 0; rc == STORE_OK && i < r->n_items; i++) {
		const char *ip[3] = { r->pulse_id, r->items[i].item_id, pg_dbl(v, r->items[i].value) };
		rc = step(b, ST_ANSWER_ITEM, 3, ip, "answer item", retry, err, errlen);
	}
	if(rc == STORE_OK && r->final) {
		rc = step(b, ST_ANSWER_FINAL, 1, p, "answer", retry, err, errlen);
		for(int i = 0; rc == STORE_OK && i < r->n_scores; i++) {
			const char *sp[3] = { r->pulse_id, r->scores[i].name, pg_dbl(v, r->scores[i].value) };
			rc = step(b, ST_SCORE_INSERT, 3, sp, "answer score", retry, err, errlen);
		}
	}
	if(rc == STORE_OK)
		rc = set_status(b, r->pulse_id, r->final ? "answered" : "partial", r->answered_at_us,
			"answer", retry, err, errlen);
done:
	rc = pg_tx_finish(b, rc, "answer", fp, retry, err, errlen);
	g_free(fp);
	return rc;
}

store_rc pg_answer(store_backend *b, const store_answer_rec *r, char *err, size_t errlen) {
	return pg_retrying(b, answer_tx, r, err, errlen);
}

static store_rc dismiss_tx(store_backend *b, const void *args, gboolean *retry,
		char *err, size_t errlen) {
	const change_args *a = args;
	const char *pulse_id = a->id;
	gint64 at_us = a->at_us;
	pg_num t;
	const char *p[2] = { pulse_id, pg_i64(t, at_us) };
	char *fp = pg_fingerprint("dismiss", 2, p);
	gboolean done;
	store_rc rc = pg_tx_begin(b, "dismiss", fp, &done, err, errlen);
	if(rc != STORE_OK || done) {
		g_free(fp);
		return rc;
	}
	pulse_state ps;
	rc = open_pulse(b, pulse_id, "dismiss", &ps, retry, err, errlen);
	if(rc == STORE_OK)
		rc = step(b, ps.has_answer ? ST_DISMISS_UPDATE : ST_DISMISS_INSERT, 2, p, "dismiss",
			retry, err, errlen);
	if(rc == STORE_OK)
		rc = set_status(b, pulse_id, "dismissed", at_us, "dismiss", retry, err, errlen);
	rc = pg_tx_finish(b, rc, "dismiss", fp, retry, err, errlen);
	g_free(fp);
	return rc;
}

store_rc pg_dismiss(store_backend *b, const char *pulse_id, gint64 at_us,
		char *err, size_t errlen) {
	change_args a = { pulse_id, NULL, at_us };
	return pg_retrying(b, dismiss_tx, &a, err, errlen);
}

