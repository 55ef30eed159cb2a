/*
 * store_pg_conn.c — the PostgreSQL backend's connections (store_pg.h):
 * connecting with bounded timeouts and the session's settings, the URL
 * without its password, libpq's failures as a store_rc and a sentence,
 * and the small wrappers every statement goes through.
 *
 * What a failure means for the store: a server that went away, a
 * connection, resource or I/O problem is STORE_UNAVAILABLE (transient:
 * store.c retries what must be kept); serialization failures and
 * deadlocks are worth running the transaction again; constraint
 * violations are the caller's, as in the SQLite backend (sq_classify). The
 * messages are libpq's and the server's primary text on one line: never a
 * DETAIL (it quotes row values, which may be codes) and never the
 * password.
 */
#include "store_pg.h"

#include <string.h>

/* Messages from libpq on one line, without the password. */
void pg_tidy(char *msg, const char *secret) {
	g_strstrip(g_strdelimit(msg, "\n\t", ' '));
	for(char *p = msg; *p; p++)            /* runs of spaces to one */
		while(p[0] == ' ' && p[1] == ' ')
			memmove(p, p + 1, strlen(p));
	if(secret && secret[0]) {
		size_t n = strlen(secret);
		char *hit;
		while((hit = strstr(msg, secret)) != NULL) {
			memset(hit, '*', n);
		}
	}
}

pg_fault *pg_fault_set(pg_fault *f, PGconn *conn, const PGresult *res) {
	memset(f, 0, sizeof(*f));
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *cons = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
	g_strlcpy(f->sqlstate, state ? state : "", sizeof(f->sqlstate));
	g_strlcpy(f->msg, msg ? msg : (conn ? PQerrorMessage(conn) : "no connection"), sizeof(f->msg));
	if(f->msg[0] == '\0')
		g_strlcpy(f->msg, "the connection to the server was lost", sizeof(f->msg));
	g_strlcpy(f->constraint, cons ? cons : "", sizeof(f->constraint));
	pg_tidy(f->msg, NULL);
	/* a broken connection, whatever the server said last */
	if(conn && PQstatus(conn) == CONNECTION_BAD && strncmp(f->sqlstate, "57P", 3) != 0)
		f->sqlstate[0] = '\0';
	return f;
}

gboolean pg_server_gone(const pg_fault *f) {
	const char *s = f->sqlstate;
	return s[0] == '\0' || strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0
		|| strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0;
}

store_rc pg_classify(const pg_fault *f, const char *what, gboolean *retry,
		char *err, size_t errlen) {
	const char *s = f->sqlstate;
	if(retry)
		*retry = strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0;
	if(pg_server_gone(f)) {
		g_snprintf(err, errlen, "%s: the PostgreSQL server cannot be reached now (%s)", what, f->msg);
		return STORE_UNAVAILABLE;
	}
	if(strncmp(s, "53", 2) == 0 || strncmp(s, "58", 2) == 0 || strcmp(s, "25006") == 0
			|| strcmp(s, "57P04") == 0) {
		g_snprintf(err, errlen, "%s: the database cannot be written now (%s)", what, f->msg);
		return STORE_UNAVAILABLE;
	}
	if(strncmp(s, "40", 2) == 0 || strcmp(s, "55P03") == 0 || strcmp(s, "57014") == 0) {
		g_snprintf(err, errlen, "%s: the database is locked by another session (%s)", what, f->msg);
		return STORE_BUSY;
	}
	if(strcmp(s, "23503") == 0) {
		g_snprintf(err, errlen, "%s: the visit or pulse it refers to is not stored", what);
		return STORE_NOT_FOUND;
	}
	if(strcmp(s, "23514") == 0)
		g_snprintf(err, errlen, "%s: CHECK constraint failed: %s", what, f->constraint);
	else
		g_snprintf(err, errlen, "%s: %s", what, f->msg);
	return STORE_ERR;
}

PGresult *pg_run(PGconn *conn, const char *stmt, int n, const char *const *params, pg_fault *f) {
	PGresult *res = PQexecPrepared(conn, stmt, n, params, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(res);
	if(res != NULL && (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK))
		return res;
	pg_fault_set(f, conn, res);
	PQclear(res);
	return NULL;
}

int pg_exec(PGconn *conn, const char *sql, pg_fault *f) {
	PGresult *res = PQexec(conn, sql);
	ExecStatusType s = PQresultStatus(res);
	int ok = res != NULL && (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK);
	if(!ok)
		pg_fault_set(f, conn, res);
	PQclear(res);
	return ok ? 0 : -1;
}

store_rc pg_tx_end(PGconn *conn, store_rc rc, const char *what, gboolean *retry,
		char *err, size_t errlen) {
	if(rc == STORE_OK) {
		pg_fault f;
		if(pg_exec(conn, "COMMIT", &f) == 0)
			return STORE_OK;
		rc = pg_classify(&f, what, retry, err, errlen);
		if(pg_server_gone(&f)) {
			g_snprintf(err, errlen, "%s: the connection to the PostgreSQL server was lost during "
				"COMMIT; whether it committed is not known (%s)", what, f.msg);
			return STORE_UNAVAILABLE;
		}
	}
	if(PQstatus(conn) == CONNECTION_OK && PQtransactionStatus(conn) != PQTRANS_IDLE) {
		PGresult *res = PQexec(conn, "ROLLBACK");
		PQclear(res);
	}
	return rc;
}

int pg_prepare_all(PGconn *conn, const pg_stmt *list, int n, gboolean read_only,
		char *err, size_t errlen) {
	for(int i = 0; i < n; i++) {
		if(read_only && list[i].writes)
			continue;
		PGresult *res = PQprepare(conn, list[i].name, list[i].sql, 0, NULL);
		if(PQresultStatus(res) != PGRES_COMMAND_OK) {
			pg_fault f;
			pg_fault_set(&f, conn, res);
			PQclear(res);
			g_snprintf(err, errlen, "cannot prepare statement %s: %s", list[i].name, f.msg);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}

static void quiet(void *arg, const char *message) {
	(void)arg;
	(void)message;                     /* the store never logs */
}

int pg_session_settings(PGconn *conn, gboolean read_only, char *err, size_t errlen) {
	pg_fault f;
	/* synchronous_commit on: COMMIT returns once the commit is on disk;
	 * lock_timeout: a lock held elsewhere fails the job (STORE_BUSY, like
	 * SQLite's busy timeout) instead of holding the lane */
	const char *common = "SET synchronous_commit = on; SET client_min_messages = warning;"
		" SET lock_timeout = '5s'";
	if(pg_exec(conn, common, &f) != 0
			|| (read_only && pg_exec(conn, "SET default_transaction_read_only = on", &f) != 0)
			|| (!read_only && pg_exec(conn, "CREATE TEMP TABLE IF NOT EXISTS ap_doomed"
				" (visit_id TEXT PRIMARY KEY)", &f) != 0)) {
		g_snprintf(err, errlen, "cannot set up the session: %s", f.msg);
		return -1;
	}
	return 0;
}

#define ANALYTICS_NICE "10"           /* as the analytics lane's own thread (store.c) */

int pg_analytics_session(PGconn *conn, char *err, size_t errlen) {
	pg_fault f;
	if(pg_exec(conn, "SET work_mem = '64MB'", &f) != 0) {
		g_snprintf(err, errlen, "cannot set up the analytics session: %s", f.msg);
		return -1;
	}
	PGresult *r = PQexec(conn, "SELECT 1 FROM pg_extension WHERE extname = 'prioritize'");
	if(PQresultStatus(r) != PGRES_TUPLES_OK) {
		g_snprintf(err, errlen, "cannot set up the analytics session: %s", PQerrorMessage(conn));
		PQclear(r);
		return -1;
	}
	gboolean have = PQntuples(r) > 0;
	PQclear(r);
	if(!have)
		return 0;
	/* a session may lower its own process's priority, never raise it */
	r = PQexec(conn, "SELECT set_backend_priority(pg_backend_pid(), " ANALYTICS_NICE ")"
		" WHERE get_backend_priority(pg_backend_pid()) < " ANALYTICS_NICE);
	int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 1 : -1;
	if(rc < 0)
		g_snprintf(err, errlen, "cannot lower the analytics session's priority: %s", PQerrorMessage(conn));
	PQclear(r);
	return rc;
}

/* The host is a Unix socket folder (or a list): it goes in the query,
 * and the port with it. */
static gboolean socket_host(const PQconninfoOption *opts) {
	for(const PQconninfoOption *o = opts; o->keyword; o++)
		if(strcmp(o->keyword, "host") == 0)
			return o->val == NULL || o->val[0] == '\0' || o->val[0] == '/' || strchr(o->val, ',') != NULL;
	return TRUE;
}

char *store_pg_safe_url(const char *url) {
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	PQfreemem(perr);
	if(opts == NULL)
		return NULL;
	const char *host = NULL, *port = NULL, *user = NULL, *dbname = NULL;
	GString *query = g_string_new(NULL);
	for(PQconninfoOption *o = opts; o->keyword; o++) {
		if(o->val == NULL || o->val[0] == '\0')
			continue;
		if(strcmp(o->keyword, "password") == 0 || strcmp(o->keyword, "sslpassword") == 0)
			continue;                  /* never shown */
		if(strcmp(o->keyword, "host") == 0 && o->val[0] != '/' && strchr(o->val, ',') == NULL)
			host = o->val;
		else if(strcmp(o->keyword, "port") == 0 && strchr(o->val, ',') == NULL && !socket_host(opts))
			port = o->val;
		else if(strcmp(o->keyword, "user") == 0)
			user = o->val;
		else if(strcmp(o->keyword, "dbname") == 0)
			dbname = o->val;
		else {
			char *v = g_uri_escape_string(o->val, NULL, FALSE);
			g_string_append_printf(query, "%c%s=%s", query->len ? '&' : '?', o->keyword, v);
			g_free(v);
		}
	}
	GString *s = g_string_new("postgresql://");
	if(user) {
		char *u = g_uri_escape_string(user, NULL, FALSE);
		g_string_append_printf(s, "%s@", u);
		g_free(u);
	}
	if(host)
		g_string_append(s, host);
	if(port)
		g_string_append_printf(s, ":%s", port);
	g_string_append_c(s, '/');
	if(dbname) {
		char *d = g_uri_escape_string(dbname, NULL, FALSE);
		g_string_append(s, d);
		g_free(d);
	}
	g_string_append(s, query->str);
	g_string_free(query, TRUE);
	PQconninfoFree(opts);
	return g_string_free(s, FALSE);
}

/* The password of url (g_free it), or NULL. */
char *pg_password_of(const char *url) {
	PQconninfoOption *opts = PQconninfoParse(url, NULL);
	char *pw = NULL;
	for(PQconninfoOption *o = opts; o && o->keyword; o++)
		if(strcmp(o->keyword, "password") == 0 && o->val && o->val[0])
			pw = g_strdup(o->val);
	PQconninfoFree(opts);
	return pw;
}

PGconn *store_pg_connect(const char *url, gboolean read_only, char *err, size_t errlen) {
	/* defaults first: the URL may override them */
	const char *const keys[] = { "connect_timeout", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"fallback_application_name", "dbname", NULL };
	const char *const vals[] = { "3", "1", "10", "5", "3", "15000",
		read_only ? "alliance-report" : "alliance-pulse", url, NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	char *secret = pg_password_of(url);
	if(conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		char msg[256];
		g_strlcpy(msg, conn ? PQerrorMessage(conn) : "out of memory", sizeof(msg));
		pg_tidy(msg, secret);
		g_snprintf(err, errlen, "cannot connect to the PostgreSQL server: %s", msg);
		PQfinish(conn);
		g_free(secret);
		return NULL;
	}
	PQsetNoticeProcessor(conn, quiet, NULL);
	char serr[256];
	if(pg_session_settings(conn, read_only, serr, sizeof(serr)) != 0) {
		pg_tidy(serr, secret);
		g_snprintf(err, errlen, "%s", serr);
		PQfinish(conn);
		g_free(secret);
		return NULL;
	}
	g_free(secret);
	return conn;
}

