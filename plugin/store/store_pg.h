/*
 * store_pg.h — internals of the PostgreSQL backend (store_pg*.c) that the
 * backend's files share and that tests may reach; callers of the store use
 * store.h (store_open_pg, store_open_pg_for_reading) only.
 *
 * The backend's files: store_pg.c (opening, the lanes' connections and
 * their reconnection, transactions, the simple operations), store_pg_conn.c
 * (libpq's plumbing: connecting, faults as store_rc, the URL without its
 * password), store_pg_answers.c (the answer rules), store_pg_samples.c
 * (samples and their partitions), store_pg_migrations.c (the schema as
 * numbered migrations, and the code that applies them), store_pg_report.c
 * (summaries, the report reads, erasure and retention).
 */
#ifndef ALLIANCE_STORE_PG_H
#define ALLIANCE_STORE_PG_H

#include "store.h"

#include <libpq-fe.h>

/* Migrations: store_pg_migrations[i] is the SQL of schema version i+1,
 * the PostgreSQL twin of store_sqlite_migrations[i]. Append-only. */
extern const char *const store_pg_migrations[];
extern const int store_pg_n_migrations;

/* The advisory locks of the store (two-key form, so they never meet an
 * advisory lock of another application): STORE_PG_LOCK_CLIENT with the
 * client code's hashtext() orders visit_create (shared) against forget
 * (exclusive); STORE_PG_LOCK_SCHEMA with 1 serialises migrations, with 2
 * the creation of sample partitions (inside ap_samples_partition()). */
#define STORE_PG_LOCK_CLIENT 1095781459          /* "APLS" */
#define STORE_PG_LOCK_SCHEMA 1095781460

/* The marker of our schema: the comment on schema_version (the
 * PostgreSQL stand-in for SQLite's application_id). */
#define STORE_PG_SCHEMA_MARK "Alliance Pulse schema (application id APLS)"

/* Bring the database of conn up to version n by running migrations
 * [version..n-1], all in one transaction together with the version check,
 * under the migration advisory lock (instances starting together migrate
 * once; the others wait, then find nothing to do). Refuses a database
 * whose version is above n, a schema_version that is not ours, or a schema
 * that has tables but no schema_version (another application's). Returns
 * the version found before migrating, or -1 with the reason in err, worded
 * to follow the database's name ("has schema version 99, newer than ...");
 * nothing is changed then. */
int store_pg_migrate(PGconn *conn, const char *const *migrations, int n,
	char *err, size_t errlen);

/* The schema version of conn's database without changing anything: -1
 * without a schema_version of ours, -2 if it could not be read (err). */
int store_pg_schema_version(PGconn *conn, char *err, size_t errlen);

/* Connect to url for the store: connect_timeout 3 s unless the URL says
 * otherwise, TCP keepalives, notices silenced, synchronous_commit on and,
 * with read_only, default_transaction_read_only on (the sessions of
 * store_open_pg_for_reading). NULL with a sentence in err (no password). */
PGconn *store_pg_connect(const char *url, gboolean read_only, char *err, size_t errlen);

/* url rebuilt without its password (g_free it); NULL if libpq cannot
 * parse it. */
char *store_pg_safe_url(const char *url);

/* Tests only: when set to 1, the next write transaction's COMMIT is sent
 * and the connection is cut right after, before its result is read (a
 * lost COMMIT, as a network failure at that moment makes one); reset to 0
 * by the store when used. */
extern gint store_pg_test_cut_after_commit;

/* --- shared by the backend's files --------------------------------------------------- */

/* The outcome of a failed libpq call: its SQLSTATE ("" when there is none:
 * the connection broke), the primary message and the constraint named. */
typedef struct pg_fault {
	char sqlstate[6];
	char msg[200];
	char constraint[64];
} pg_fault;

/* Record res (NULL allowed: the connection broke) into f; returns f. */
pg_fault *pg_fault_set(pg_fault *f, PGconn *conn, const PGresult *res);

/* A failure as a store_rc and a sentence ("<what>: ..."), like
 * sq_classify(): the server gone, a connection, resource or I/O problem
 * -> STORE_UNAVAILABLE; a serialization failure or deadlock (after the
 * backend's own retries) or a lock timeout -> STORE_BUSY; a foreign key
 * -> STORE_NOT_FOUND; anything else (a CHECK, a trigger's refusal, a
 * duplicate key) -> STORE_ERR. *retry (may be NULL) is set for the
 * SQLSTATEs worth running the whole transaction again (40001, 40P01). */
store_rc pg_classify(const pg_fault *f, const char *what, gboolean *retry,
	char *err, size_t errlen);

/* A prepared statement of one of the backend's lists: its name on the
 * connection, its SQL, and whether a read-only session may prepare it. */
typedef struct pg_stmt {
	const char *name;
	const char *sql;
	gboolean writes;
} pg_stmt;

/* Prepare every statement of list[0..n-1] on conn (only the reading ones
 * with read_only); -1 with err. */
int pg_prepare_all(PGconn *conn, const pg_stmt *list, int n, gboolean read_only,
	char *err, size_t errlen);

/* The report operations (store_pg_report.c), on a connection the caller
 * owns and keeps healthy (its statements prepared). Each runs its own
 * transaction (pg_report_summarize with in_tx: inside the caller's);
 * *retry as for pg_classify. pg_report_backfill summarises the ended
 * visits without a summary and returns how many (-1 with err). */
extern const pg_stmt *const store_pg_report_stmts;
extern const int store_pg_report_n_stmts;
store_rc pg_report_summarize(PGconn *conn, const char *visit_id, gboolean in_tx,
	gboolean *retry, char *err, size_t errlen);
store_rc pg_report_forget(PGconn *conn, const char *client_code, gint64 at_us,
	gint64 *rows, gboolean *retry, char *err, size_t errlen);
store_rc pg_report_retention(PGconn *conn, int days, gint64 now_us, gint64 *rows,
	gboolean *retry, char *err, size_t errlen);
store_rc pg_report_rows(PGconn *conn, store_report_what what, const store_report_filter *f,
	store_row_cb cb, void *user, char *err, size_t errlen);
int pg_report_backfill(PGconn *conn, char *err, size_t errlen);

/* The connection helpers (store_pg_conn.c). pg_tidy: a libpq message on
 * one line, every occurrence of secret (if any) starred out.
 * pg_server_gone: the failure means the connection is gone (or going).
 * pg_password_of: the password in url (g_free it) or NULL.
 * pg_session_settings: the session's SETs (and the erasure list, a
 * temporary table, unless read_only), again after every reset. */
void pg_tidy(char *msg, const char *secret);
gboolean pg_server_gone(const pg_fault *f);
char *pg_password_of(const char *url);
int pg_session_settings(PGconn *conn, gboolean read_only, char *err, size_t errlen);

/* Helpers of both files: run a prepared statement with text parameters
 * (NULL = SQL NULL); the result, or NULL with f filled (the result is then
 * cleared). ok is PGRES_COMMAND_OK or PGRES_TUPLES_OK. */
PGresult *pg_run(PGconn *conn, const char *stmt, int n, const char *const *params,
	pg_fault *f);
/* Run constant SQL (BEGIN, COMMIT, ...); 0 or -1 with f. */
int pg_exec(PGconn *conn, const char *sql, pg_fault *f);
/* COMMIT, or ROLLBACK if rc is not STORE_OK (or the COMMIT failed); the
 * final rc. A COMMIT whose outcome is unknown (the connection broke) is
 * STORE_UNAVAILABLE, never STORE_OK. */
store_rc pg_tx_end(PGconn *conn, store_rc rc, const char *what, gboolean *retry,
	char *err, size_t errlen);

/* The current row of res as a JSON object (column -> value), typed as the
 * SQLite backend types it: integers as integers, double precision as
 * reals, numeric as an integer when it has no fraction, booleans as 0/1,
 * NULL as null, a column named *_json parsed (object or array, else null)
 * and keyed without the suffix. */
json_t *pg_row_json(const PGresult *res, int row);

/* --- inside the backend (store_pg.c and the files of its operations) -------------- */

#include "store_backend.h"

/* One connection of the store, used by one lane's thread only. */
struct store_backend {
	PGconn *conn;
	gboolean read_only;
	gboolean ready;                    /* session set up, statements prepared */
	gboolean analytics;                /* the analytics lane's session (pg_analytics_session) */
	char *secret;                      /* the password, to keep it out of messages */
	pg_fault f;                        /* the last failure */
	char xid[24];                      /* of the open write transaction */
	/* a COMMIT whose outcome was unknown: its transaction and job */
	char *pending_xid;
	char *pending_fp;
	GHashTable *months;                /* months of samples known to have a partition */
};

typedef char pg_num[32];
/* v as a text parameter (doubles with 17 digits: an exact round trip) */
const char *pg_i64(pg_num buf, gint64 v);
const char *pg_dbl(pg_num buf, double v);

/* What a job is, to know it again when it is retried: its operation and
 * the parameters of its main statement (g_free). */
char *pg_fingerprint(const char *op, int n, const char *const *params);

/* The analytics lane's session, set up after each (re)connect: more
 * work_mem for its sorts, and, where the database has the `prioritize`
 * extension (Debian postgresql-NN-prioritize), its server process at nice
 * 10 so that a report yields the database server's CPU to the writers'
 * commits (docs/storage.md, "PostgreSQL"). Returns 1 if it was lowered, 0
 * if the extension is absent, -1 (err) on a failure. */
int pg_analytics_session(PGconn *conn, char *err, size_t errlen);

/* Before each operation: a broken connection is reset (bounded by
 * connect_timeout) and its statements prepared again. */
store_rc pg_ensure_conn(store_backend *b, const char *what, char *err, size_t errlen);

/* A write transaction of job fp (may be NULL): BEGIN, keeping its id;
 * *done when fp is the job whose COMMIT was lost and it did commit. Then
 * COMMIT (or ROLLBACK if rc is not STORE_OK); a lost COMMIT keeps the
 * transaction id and fp, to be asked about when the job comes again. */
store_rc pg_tx_begin(store_backend *b, const char *what, const char *fp, gboolean *done,
	char *err, size_t errlen);
store_rc pg_tx_finish(store_backend *b, store_rc rc, const char *what, const char *fp,
	gboolean *retry, char *err, size_t errlen);

/* b's last failure as an rc and a sentence. */
store_rc pg_fail(store_backend *b, const char *what, gboolean *retry, char *err, size_t errlen);

/* One operation's transaction; *retry set when it is worth running again. */
typedef store_rc (*pg_tx_fn)(store_backend *b, const void *args, gboolean *retry,
	char *err, size_t errlen);
/* fn, run again after a serialization failure or deadlock (a few times). */
store_rc pg_retrying(store_backend *b, pg_tx_fn fn, const void *args, char *err, size_t errlen);

/* Run statement stmt in the open transaction: STORE_OK or the failure. */
store_rc pg_step(store_backend *b, const char *stmt, int n, const char *const *params,
	const char *what, gboolean *retry, char *err, size_t errlen);

/* Rows a command changed. */
gint64 pg_changes(PGresult *res);

/* The answer rules on a locked pulse row (store_pg_answers.c). */
extern const pg_stmt store_pg_answer_stmts[];
extern const int store_pg_answer_n_stmts;
store_rc pg_pulse_status(store_backend *b, const char *pulse_id, const char *status,
	gint64 at_us, char *err, size_t errlen);
store_rc pg_answer(store_backend *b, const store_answer_rec *r, char *err, size_t errlen);
store_rc pg_dismiss(store_backend *b, const char *pulse_id, gint64 at_us, char *err, size_t errlen);

/* Quality samples and their partitions (store_pg_samples.c):
 * pg_samples_ensure_month makes the partition of at_us's month and the
 * next month's if missing (FALSE only when the server went away). */
extern const pg_stmt store_pg_sample_stmts[];
extern const int store_pg_sample_n_stmts;
guint pg_samples(store_backend *b, const store_sample_rec *r, guint n);
gboolean pg_samples_ensure_month(store_backend *b, gint64 at_us);

#endif
