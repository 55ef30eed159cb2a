/*
 * store_pg_samples.c — quality samples in the PostgreSQL backend: a batch
 * in one statement, and the monthly partitions of quality_samples made
 * before a month's first sample (store_pg_migrations.c has the functions
 * that make and drop them; docs/storage.md, "PostgreSQL").
 */
#include "store_pg.h"

#include <string.h>

enum {
	ST_SAMPLES_INSERT, ST_SAMPLE_INSERT, ST_PARTITION,
	ST__COUNT
};

#define W TRUE
const pg_stmt store_pg_sample_stmts[ST__COUNT] = {
	/* a batch of samples in one statement: the arrays' rows in order, those
	 * of an unknown visit left out (counted by the caller) */
	[ST_SAMPLES_INSERT] = { "ap_samples_insert",
		"INSERT INTO quality_samples(visit_id, leg, medium, at, metrics_json)"
		" SELECT u.visit_id, u.leg, u.medium, u.at, u.m"
		" FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[])"
		"  WITH ORDINALITY AS u(visit_id, leg, medium, at, m, n)"
		" WHERE EXISTS (SELECT 1 FROM visits v WHERE v.visit_id = u.visit_id) ORDER BY u.n", W },
	[ST_SAMPLE_INSERT] = { "ap_sample_insert",
		"INSERT INTO quality_samples(visit_id, leg, medium, at, metrics_json)"
		" VALUES ($1, $2, $3, $4::BIGINT, $5)", W },
	[ST_PARTITION] = { "ap_partition", "SELECT ap_samples_partition($1::BIGINT)", W },
};
#undef W
const int store_pg_sample_n_stmts = ST__COUNT;

static PGresult *run(store_backend *b, int st, int n, const char *const *params) {
	return pg_run(b->conn, store_pg_sample_stmts[st].name, n, params, &b->f);
}


/* The month of a time (UTC) as year * 12 + month - 1, and the first
 * microsecond of the month after it; FALSE for a time GLib cannot place. */
static gboolean month_of(gint64 at_us, gint64 *key, gint64 *next_us) {
	gint64 s = at_us >= 0 ? at_us / G_USEC_PER_SEC : -((-at_us + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
	GDateTime *d = g_date_time_new_from_unix_utc(s);
	if(d == NULL)
		return FALSE;
	int y = g_date_time_get_year(d), m = g_date_time_get_month(d);
	g_date_time_unref(d);
	*key = (gint64)y * 12 + (m - 1);
	GDateTime *n = g_date_time_new_utc(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1, 0, 0, 0);
	if(n == NULL)
		return FALSE;
	*next_us = g_date_time_to_unix(n) * G_USEC_PER_SEC;
	g_date_time_unref(n);
	return TRUE;
}

/* The partition of at_us's month exists (created if missing, in a
 * transaction of its own), and the next month's too, so that the turn of
 * the month finds it ready. A month that cannot be made is not tried again
 * on this connection: its samples land in the DEFAULT partition. FALSE
 * only when the server went away. */
static gboolean ensure_month(store_backend *b, gint64 at_us, int depth) {
	gint64 key, next;
	if(!month_of(at_us, &key, &next))
		return TRUE;
	if(!g_hash_table_contains(b->months, &key)) {
		pg_num t;
		const char *p[1] = { pg_i64(t, at_us) };
		PGresult *res = run(b, ST_PARTITION, 1, p);
		if(res == NULL && pg_server_gone(&b->f))
			return FALSE;
		PQclear(res);
		g_hash_table_add(b->months, g_memdup2(&key, sizeof(key)));
	}
	return depth > 0 || ensure_month(b, next, depth + 1);
}

/* Append a value to a PostgreSQL array literal: quoted, \ and " escaped. */
static void array_add(GString *a, const char *v) {
	g_string_append(a, a->len > 1 ? ",\"" : "\"");
	for(const char *c = v; *c; c++) {
		if(*c == '"' || *c == '\\')
			g_string_append_c(a, '\\');
		g_string_append_c(a, *c);
	}
	g_string_append_c(a, '"');
}

/* One by one, each behind a savepoint: a sample that fails is left out
 * without taking its batch-mates with it. Returns how many failed. */
static guint samples_one_by_one(store_backend *b, const store_sample_rec *r, guint n) {
	guint failed = 0;
	if(pg_exec(b->conn, "BEGIN", &b->f) != 0)
		return n;
	for(guint i = 0; i < n; i++) {
		pg_num t;
		const char *p[5] = { r[i].visit_id, r[i].leg, r[i].medium, pg_i64(t, r[i].at_us), r[i].metrics_json };
		if(pg_exec(b->conn, "SAVEPOINT ap_sample", &b->f) != 0)
			return n;
		PGresult *res = run(b, ST_SAMPLE_INSERT, 5, p);
		if(res == NULL) {
			if(pg_server_gone(&b->f) || pg_exec(b->conn, "ROLLBACK TO SAVEPOINT ap_sample", &b->f) != 0)
				return n;
			failed++;
		}
		PQclear(res);
	}
	char err[256];
	return pg_tx_end(b->conn, STORE_OK, "samples", NULL, err, sizeof(err)) == STORE_OK ? failed : n;
}

guint pg_samples(store_backend *b, const store_sample_rec *r, guint n) {
	char err[256];
	if(n == 0 || pg_ensure_conn(b, "samples", err, sizeof(err)) != STORE_OK)
		return n;
	for(guint i = 0; i < n; i++)
		if(!ensure_month(b, r[i].at_us, 0))
			return n;
	GString *cols[5];
	for(int c = 0; c < 5; c++)
		cols[c] = g_string_new("{");
	for(guint i = 0; i < n; i++) {
		pg_num t;
		array_add(cols[0], r[i].visit_id);
		array_add(cols[1], r[i].leg);
		array_add(cols[2], r[i].medium);
		array_add(cols[3], pg_i64(t, r[i].at_us));
		array_add(cols[4], r[i].metrics_json);
	}
	const char *p[5];
	for(int c = 0; c < 5; c++)
		p[c] = g_string_append_c(cols[c], '}')->str;
	guint failed = n;
	if(pg_exec(b->conn, "BEGIN", &b->f) == 0) {
		PGresult *res = run(b, ST_SAMPLES_INSERT, 5, p);
		gint64 stored = res ? pg_changes(res) : 0;
		PQclear(res);
		if(pg_tx_end(b->conn, res ? STORE_OK : STORE_ERR, "samples", NULL, err, sizeof(err)) == STORE_OK)
			failed = n - (guint)stored;
		else if(PQstatus(b->conn) == CONNECTION_OK && !pg_server_gone(&b->f))
			failed = samples_one_by_one(b, r, n);     /* e.g. a visit erased meanwhile */
	}
	for(int c = 0; c < 5; c++)
		g_string_free(cols[c], TRUE);
	return failed;
}


gboolean pg_samples_ensure_month(store_backend *b, gint64 at_us) {
	return ensure_month(b, at_us, 0);
}
