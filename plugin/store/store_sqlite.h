/*
 * store_sqlite.h — internals of the SQLite backend that tests and tools
 * may reach; callers of the store use store.h (store_open_sqlite) only.
 *
 * Migrations: store_sqlite_migrations[i] is the SQL of schema version i+1.
 * They are append-only: a released migration is never edited, a change is
 * a new entry (and STORE_SCHEMA_VERSION in store.h goes up with it).
 */
#ifndef ALLIANCE_STORE_SQLITE_H
#define ALLIANCE_STORE_SQLITE_H

#include "store.h"

struct sqlite3;

/* Open the connection with SQLITE_OPEN_READONLY. The store refuses a
 * read-only connection; the flag exists so tests can reach that refusal
 * as root, whom file modes do not stop. */
#define STORE_SQLITE_OPEN_READONLY 0x1u

/* Open an existing database to read it only, as alliance-report does next
 * to a running plugin: nothing in the file changes (no mode, no migration,
 * no backfill), the connection is read-only, writes are refused (-1), and
 * a database of another schema version is refused with a sentence. */
#define STORE_SQLITE_OPEN_FOR_READING 0x2u

/* The same, but writable: for alliance-report --forget (no migration; the
 * erasure is one transaction and refuses while the client has an open
 * visit, like the plugin's `forget`). */
#define STORE_SQLITE_OPEN_FOR_ERASURE 0x4u

/* synchronous = OFF on the writer: commits do not wait for the disk. Only
 * for generating test and benchmark data fast; never the plugin. */
#define STORE_SQLITE_OPEN_NOT_DURABLE 0x8u

store *store_sqlite_open_ex(const char *path, unsigned flags,
	char *err, size_t errlen);

/* What the SQLite library has allocated in this process now and at most
 * since start (bytes; all connections, whatever opened them). */
void store_sqlite_memory(gint64 *used, gint64 *peak);

extern const char *const store_sqlite_migrations[];
extern const int store_sqlite_n_migrations;

/* Bring db up to version n by running migrations[version..n-1], all in
 * one IMMEDIATE transaction together with the version check (so two
 * processes opening one file cannot both migrate it). Refuses a database
 * whose version is above n, or that has tables but no schema_version
 * (another application's). Returns the version found before migrating,
 * or -1 with the reason in err, worded to follow the database's name
 * ("has schema version 99, newer than ..."); nothing is changed then.
 * sqlite_rc (may be NULL) receives SQLite's result code of the failure, so
 * the opener can tell a corrupt or read-only file from a refusal. */
int store_sqlite_migrate(struct sqlite3 *db, const char *const *migrations,
	int n, int *sqlite_rc, char *err, size_t errlen);

/* The report operations (store_sqlite_report.c): visit summaries, the
 * report reads, erasure and retention, on the backend's connection. The
 * backend prepares them after the migrations and calls them on the writer
 * thread only. sq_report_backfill() summarises every ended visit that has
 * no summary yet (rows written before version 3), in one transaction, and
 * returns how many it summarised (or -1 with err). */
typedef struct sq_report sq_report;
sq_report *sq_report_prepare(struct sqlite3 *db, char *err, size_t errlen);
void sq_report_free(sq_report *r);
int sq_report_backfill(sq_report *r, char *err, size_t errlen);
store_rc sq_report_summarize(sq_report *r, const char *visit_id, char *err, size_t errlen);
store_rc sq_report_forget(sq_report *r, const char *client_code, gint64 at_us,
	gint64 *rows, char *err, size_t errlen);
store_rc sq_report_retention(sq_report *r, int days, gint64 now_us, gint64 *rows,
	char *err, size_t errlen);
store_rc sq_report_rows(sq_report *r, store_report_what what,
	const store_report_filter *f, store_row_cb cb, void *user, char *err, size_t errlen);

/* A failed SQLite call as a store_rc and a sentence ("<what>: ..."):
 * locked -> STORE_BUSY; disk full, I/O error, a file that cannot be
 * opened or written -> STORE_UNAVAILABLE (both transient: the writer
 * retries what must be kept); anything else -> STORE_ERR. */
store_rc sq_classify(int sqlite_rc, const char *what, const char *msg,
	char *err, size_t errlen);

/* The application_id written into the database header by migration 1
 * ("APLS"), so `file` and this code can tell our databases from others. */
#define STORE_SQLITE_APPLICATION_ID 0x41504C53

#endif
