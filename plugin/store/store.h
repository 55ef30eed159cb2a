/*
 * store.h — durable storage of Alliance Pulse: visits, pulses, answers,
 * alerts, events, connection-quality samples and incidents.
 *
 * One store is one database (an SQLite file here; a PostgreSQL backend can
 * be added behind the same interface, see store_backend.h). Callers never
 * touch the database: every call copies its arguments into a job and
 * appends it to the store's queue; one writer thread owns the connection
 * and runs the jobs in order, each write job in a transaction of its own.
 * When the transaction has committed (or failed) the job's callback runs,
 * on the writer thread. So:
 *
 * - "the callback said STORE_OK" means "the row is on disk" (synchronous=FULL
 *   in WAL mode: it survives a crash of the process and of the machine).
 *   An answer is acknowledged to the participant only from its callback.
 * - Jobs run in the order they were queued, by whatever thread; a read job
 *   sees every write queued before it.
 * - Callbacks run on the writer thread and hold it up: they must be short
 *   and must not call store_sync() or store_close() (that would deadlock);
 *   they may queue further jobs.
 * - The store never logs. Errors come back as text (callback `error`,
 *   store_open_*'s err buffer, store_warning()); the text names paths and
 *   ids but never codes, answers, keys or invites.
 *
 * Refusals are part of the contract: a final answer is final (a second
 * answer or a dismissal is refused with STORE_ALREADY_FINAL and changes
 * nothing), and the check is made by the database inside the transaction,
 * not from memory.
 *
 * Quality samples are the only droppable jobs: at most
 * STORE_SAMPLE_QUEUE_MAX of them wait in the queue; beyond that
 * store_quality_sample() refuses and counts a drop. Every other job is
 * queued however long the queue is: answers are never dropped.
 *
 * Times are microseconds since the Unix epoch (UTC), passed in by the
 * caller; the store has no clock of its own.
 */
#ifndef ALLIANCE_STORE_H
#define ALLIANCE_STORE_H

#include <stddef.h>
#include <glib.h>
#include <jansson.h>

/* The schema version this build writes (the number of migrations it has). */
#define STORE_SCHEMA_VERSION 6

/* Quality samples waiting in the queue beyond this many are dropped. */
#define STORE_SAMPLE_QUEUE_MAX 10000

typedef struct store store;

typedef enum store_rc {
	STORE_OK = 0,
	STORE_ERR = -1,            /* failed; the error text says why */
	STORE_ALREADY_FINAL = -2,  /* the pulse is closed: answered, dismissed or expired */
	STORE_NOT_FOUND = -3,      /* the visit or pulse named is not stored */
	STORE_BUSY = -4,           /* another process held the database too long */
	STORE_UNAVAILABLE = -5,    /* the disk is full, an I/O error, ...: try again later */
	STORE_REFUSED = -6,        /* not allowed now (an erasure of a client with an open visit) */
} store_rc;

/* A job finished. Runs on the writer thread after the transaction
 * committed (rc == STORE_OK, error NULL) or was rolled back (error says
 * why; valid only during the call). Must not block long. */
typedef void (*store_done_cb)(store_rc rc, const char *error, void *user);

/* A read job finished: values[0..n-1] are valid only during the call. */
typedef void (*store_values_cb)(store_rc rc, const double *values, int n,
	void *user);

/* A read job finished: json (NULL unless rc == STORE_OK) is valid only
 * during the call. */
typedef void (*store_text_cb)(store_rc rc, const char *json, void *user);

/* An erasure finished: rows is how many rows it deleted (0 unless
 * rc == STORE_OK); error as for store_done_cb. */
typedef void (*store_count_cb)(store_rc rc, gint64 rows, const char *error,
	void *user);

/* One row of a report read, as a JSON object (borrowed: valid only during
 * the call; json_incref or copy it to keep it). Return 0 to go on, or
 * non-zero to stop the read early (the read then ends with STORE_OK). */
typedef int (*store_row_cb)(const json_t *row, void *user);

/* --- opening and closing ------------------------------------------------------ */

/* Open (creating if missing) the SQLite database at path and start its
 * writer thread. A new file is created with mode 0600 before SQLite sees
 * it; an existing one (and its -wal/-shm files) readable or writable by
 * group or others is tightened to 0600, which store_warning() reports.
 * The database is put in WAL mode with synchronous=FULL and foreign keys
 * on, and missing schema migrations are run (all in one transaction).
 * Returns NULL with a sentence in err when the folder is missing or
 * read-only, the file is read-only or not an SQLite database, the schema
 * is newer than this build, or the file belongs to another application. */
store *store_open_sqlite(const char *path, char *err, size_t errlen);

/* The same database opened to read only, next to a running plugin (the
 * reports and exports of alliance-report): see STORE_SQLITE_OPEN_FOR_READING
 * in store_sqlite.h. A WAL reader takes no lock the writer waits for. */
store *store_open_sqlite_for_reading(const char *path, char *err, size_t errlen);

/* Opened for one erasure next to a running plugin (alliance-report
 * --forget): as for reading (nothing migrated, the schema version must be
 * this build's), but writes are allowed; store_forget_client() refuses
 * (STORE_REFUSED) while the client has an open visit, as the plugin does. */
store *store_open_sqlite_for_erasure(const char *path, char *err, size_t errlen);

/* The PostgreSQL store (PROTOCOL.md v1.1 "Scale"): url is a libpq
 * connection URI or keyword/value string (general.db_url). Connects,
 * runs the missing migrations (under an advisory lock, so instances
 * starting together migrate once) and starts the writer and the analytics
 * lane, each on a connection of its own. A server that goes away later
 * makes the store degraded (store_health_get) until it reconnects by
 * itself. Returns NULL with a sentence in err (never the password) when
 * the server cannot be reached, refuses the login, the schema is newer
 * than this build or belongs to another application, or the build has no
 * PostgreSQL support. store_path() is the URL without its password. */
store *store_open_pg(const char *url, char *err, size_t errlen);

/* The same database, to read only (alliance-report --db-url): no
 * migration (a schema older or newer than this build is refused), every
 * write refused; the sessions are read-only transactions. */
store *store_open_pg_for_reading(const char *url, char *err, size_t errlen);
store *store_open_pg_for_erasure(const char *url, char *err, size_t errlen);

/* "sqlite" or "postgresql". */
const char *store_backend_name(const store *st);

/* Run every queued job (their callbacks fire), stop the writer thread and
 * close the database. Not from a callback. NULL is allowed. */
void store_close(store *st);

/* What the store changed on its own at open (e.g. file modes tightened),
 * for the caller to log; NULL if nothing. Owned by the store. */
const char *store_warning(const store *st);

/* The database this store writes: a file path for SQLite. */
const char *store_path(const store *st);

/* Monitoring: jobs waiting (not counting the one running), and quality
 * samples that were not stored (queue full, or their write failed). */
guint store_queue_depth(store *st);
guint64 store_dropped_samples(store *st);

/* Faults (disk full, database locked by another process, I/O errors):
 * writes that record what happened are retried in order until the
 * database takes them; meanwhile the store is degraded and refuses
 * answers, dismissals and reads at once (rc STORE_UNAVAILABLE, the reason
 * in the callback's error) and drops samples. store_health_get() says how
 * it is doing. */
typedef struct store_health {
	guint queue;                       /* jobs waiting for the writer (not the one running) */
	guint analytics_queue;             /* jobs waiting for the analytics lane */
	guint64 samples_dropped;
	guint64 failed;                    /* jobs refused or failed for a fault */
	gboolean degraded;
	char why[256];                     /* the fault, while degraded */
	/* the writer's transactions: how many ran, and the 99th percentile of
	 * the time each took (milliseconds; nearest rank) over the last
	 * STORE_COMMIT_RING of them, attempts that met a fault included (a
	 * locked database shows as the busy wait it costs); -1 before the first */
	guint64 commits;
	double commit_ms_p99;
	/* memory the SQLite library holds in this process, every connection
	 * together (page caches, prepared statements), now and at its peak, in
	 * bytes (sqlite3_status64: 0 when nothing uses SQLite) */
	gint64 sqlite_bytes, sqlite_peak_bytes;
} store_health;
/* Commit times kept for commit_ms_p99: a fixed ring, written by the writer
 * under the lock it takes after each job anyway (no allocation, nothing on
 * the callers' side). */
#define STORE_COMMIT_RING 1024
void store_health_get(store *st, store_health *h);

/* The nearest-rank percentile (0 < pct <= 100) of n durations in
 * microseconds, in milliseconds; -1 for n == 0. Sorts us in place. */
double store_percentile_ms(guint32 *us, guint n, double pct);

/* Wait until every job queued before this call has run (and committed).
 * Returns 0, or -1 if the writer has already stopped (store_close() is
 * ending) or if called on the writer thread (from a callback), where it
 * would wait for itself. */
int store_sync(store *st);

/* --- writes -------------------------------------------------------------------------
 * Each call queues one job, run as one transaction. Strings and arrays are
 * copied before the call returns. Returns 0 when queued (cb, if not NULL,
 * will be called exactly once), or -1 when refused at once (a required
 * argument is NULL, a value is not finite, a name is outside its fixed set
 * or a text that must be a JSON object is not, or the writer has already
 * stopped: store_close() is ending); cb is then never called. Jobs queued
 * while store_close() drains the queue (e.g. from callbacks) still run. */

typedef struct store_visit_rec {
	const char *visit_id;
	const char *therapist_code;
	const char *client_code;
	const char *modality;              /* "video" | "in_person" */
	gint64 created_at_us;
	const char *instance_id;           /* the instance running it; may be NULL */
	const char *invite_sha256;         /* hex SHA-256 of the client's invite, to route a
	                                    * join that reaches another instance; may be NULL;
	                                    * cleared when the visit closes */
} store_visit_rec;

/* A new visit, in state "created". */
int store_visit_create(store *st, const store_visit_rec *r,
	store_done_cb cb, void *user);

/* The visit moves to state (created|waiting|live|ended|closed). Entering
 * "live", "ended" or "closed" the first time also sets admitted_at,
 * ended_at or closed_at to at_us. STORE_NOT_FOUND for an unknown visit. */
int store_visit_state(store *st, const char *visit_id, const char *state,
	gint64 at_us, store_done_cb cb, void *user);

/* The visit ended, for end_reason (therapist|idle|max_duration|shutdown|
 * interrupted): state "ended", ended_at and end_reason set if not set
 * yet. STORE_NOT_FOUND for an unknown (or already closed) visit. */
int store_visit_ended(store *st, const char *visit_id, const char *end_reason,
	gint64 at_us, store_done_cb cb, void *user);

/* Start-up repair: every visit of instance_id (and every visit recorded
 * without an instance) not closed (a crash, SIGKILL, power loss ended the
 * process that ran it) is closed at now_us, in one transaction:
 * end_reason "interrupted" unless it had ended already, ended_at its
 * last recorded activity (the latest of its own times, pulses, answers,
 * samples, incidents and joins) if it had not ended; its open pulses
 * expire and its open incidents end at that last activity; then its
 * summary row is recomputed. cb gets the number of visits repaired. */
int store_repair_interrupted(store *st, const char *instance_id, gint64 now_us,
	store_count_cb cb, void *user);

/* This instance is up: its row of `instances` (instance_id, its public
 * Janus servers as a JSON array of strings, started_at, seen_at) is
 * created or updated. Called at start and then now and again, so that the
 * other instances sharing the database can send joins here. */
int store_instance_seen(store *st, const char *instance_id, const char *servers_json,
	gint64 started_at_us, gint64 seen_at_us, store_done_cb cb, void *user);

/* A participant joined (one row per join: re-joins are kept). role is
 * therapist|client|observer; code is NULL for observers; research_consent
 * as given at this join; language may be NULL. */
int store_participant_join(store *st, const char *visit_id, const char *role,
	const char *code, gboolean research_consent, const char *language,
	gint64 at_us, store_done_cb cb, void *user);

typedef struct store_pulse_rec {
	const char *pulse_id;
	const char *visit_id;
	const char *role;                  /* target: "client" | "therapist" */
	const char *kind;                  /* "in_session" | "end" */
	const char *instrument_id;
	const char *instrument_version;
	const char *language;              /* of the text shown */
	const char *trigger;               /* schedule|therapist|end|quality */
	const char *delivered_via;         /* datachannel|event; may be NULL */
	gint64 created_at_us;
	gint64 expires_at_us;              /* 0: does not expire */
} store_pulse_rec;

/* A new pulse, in status "pending". */
int store_pulse_create(store *st, const store_pulse_rec *r,
	store_done_cb cb, void *user);

/* status "delivered": pending -> delivered (a no-op, STORE_OK, once the
 * pulse is delivered or partially answered); "expired": pending, delivered
 * or partial -> expired; "dismissed": exactly store_dismiss(). A closed
 * pulse (answered, dismissed, expired) is never changed: STORE_ALREADY_FINAL.
 * Any other status is refused at once (-1). */
int store_pulse_status(store *st, const char *pulse_id, const char *status,
	gint64 at_us, store_done_cb cb, void *user);

/* The pulse went out by via ("datachannel" | "event"): status as
 * store_pulse_status(…, "delivered", …), and delivered_via is set if it
 * was not known when the pulse was created (a pulse delivered on re-join). */
int store_pulse_delivered(store *st, const char *pulse_id, const char *via,
	gint64 at_us, store_done_cb cb, void *user);

typedef struct store_item_value {
	const char *item_id;
	double value;
} store_item_value;

typedef struct store_score {
	const char *name;                  /* "total", a subscale, ... */
	double value;
} store_score;

typedef struct store_answer_rec {
	const char *pulse_id;
	gboolean final;
	gint64 answered_at_us;
	gint64 time_to_answer_ms;          /* from delivery to this answer */
	gboolean research_consent;         /* the client's consent in force */
	int n_items;
	const store_item_value *items;
	int n_scores;
	const store_score *scores;         /* stored only when final */
} store_answer_rec;

/* Store (part of) an answer: the answer row is created or updated, the
 * item values merge with those of earlier partial answers (an item given
 * again takes its new value), the pulse becomes "partial" or "answered".
 * Scores are stored only with a final answer. If the pulse is closed
 * (already has a final answer, was dismissed or expired) the whole job is
 * refused with STORE_ALREADY_FINAL and nothing changes; STORE_NOT_FOUND
 * for an unknown pulse. */
int store_answer(store *st, const store_answer_rec *r,
	store_done_cb cb, void *user);

/* The participant declined the pulse ("Not now"): the answer row is marked
 * dismissed (item values of an earlier partial answer are kept) and the
 * pulse becomes "dismissed". STORE_ALREADY_FINAL if the pulse is closed. */
int store_dismiss(store *st, const char *pulse_id, gint64 at_us,
	store_done_cb cb, void *user);

typedef struct store_alert_rec {
	const char *visit_id;
	const char *pulse_id;              /* may be NULL */
	const char *rule;                  /* "below_cutoff" | "drop" */
	const char *score_name;
	double score;
	double threshold;
	const char *quality_json;          /* quality context; may be NULL */
	gint64 at_us;
} store_alert_rec;

/* An alert sent to the therapist. */
int store_alert(store *st, const store_alert_rec *r,
	store_done_cb cb, void *user);

/* Something worth keeping in the visit's history (or the server's, with
 * visit_id NULL). detail_json may be NULL and must never hold codes,
 * answers, keys or invites. */
int store_event(store *st, const char *visit_id, const char *kind,
	const char *detail_json, gint64 at_us, store_done_cb cb, void *user);

/* One quality window of one leg (client_up, ...) and medium (audio,
 * video). Droppable: returns -1 and counts a drop when
 * STORE_SAMPLE_QUEUE_MAX samples are already waiting. Consecutive queued
 * samples are written together in one transaction; a sample whose write
 * fails (e.g. unknown visit) is counted as dropped. No callback. */
int store_quality_sample(store *st, const char *visit_id, const char *leg,
	const char *medium, gint64 at_us, const char *metrics_json);

/* The connection-quality context of a pulse: quality_json, a JSON object
 * summarising each leg over the minutes before delivery (the whole visit
 * for end pulses), is stored with the pulse, replacing any earlier one.
 * Allowed whatever the pulse's status (the context is measured, not
 * answered). Refused at once (-1) if quality_json is not a JSON object;
 * STORE_NOT_FOUND for an unknown pulse. */
int store_pulse_quality(store *st, const char *pulse_id, const char *quality_json,
	store_done_cb cb, void *user);

typedef struct store_incident_rec {
	const char *visit_id;
	const char *leg;                   /* client_up|client_down|therapist_up|therapist_down */
	const char *medium;                /* audio|video|any */
	const char *kind;                  /* freeze|loss_burst|high_rtt|stall|reconnect|slow_link */
	gint64 started_at_us;
	gint64 ended_at_us;                /* 0 = still open */
	const char *detail_json;           /* a JSON object; may be NULL */
} store_incident_rec;

/* A connection-quality incident of one leg of a visit (one new row each
 * call). Refused at once (-1) for an unknown leg, medium or kind, an end
 * before the start (ended_at_us != 0 && ended_at_us < started_at_us), or
 * a detail_json that is not a JSON object. STORE_NOT_FOUND for an unknown
 * visit. */
int store_incident(store *st, const store_incident_rec *r,
	store_done_cb cb, void *user);

/* --- reads (jobs too: they see every write queued before them) ----------------- */

/* The baseline for the drop rule: the final scores named score_name of the
 * client's own pulses (role "client") of instrument_id, in visits of
 * client_code other than exclude_visit_id (NULL: none excluded); the
 * `limit` most recent (limit <= 0: all), returned oldest first. */
int store_client_scores(store *st, const char *client_code,
	const char *instrument_id, const char *score_name,
	const char *exclude_visit_id, int limit, store_values_cb cb, void *user);

/* The connection quality of a visit, for reports, as one JSON object:
 *   {"pulses":[{"pulse_id":"p1","quality":{...} or null}, ...],
 *    "incidents":[{"leg":..,"medium":..,"kind":..,"started_at":<us>,
 *                  "ended_at":<us> or null,"detail":{...} or null}, ...],
 *    "samples":<number of quality samples stored>}
 * pulses in order of creation, incidents in order of start. The read sees
 * one consistent state of the database. STORE_NOT_FOUND (json NULL) for an
 * unknown visit. */
int store_visit_quality(store *st, const char *visit_id, store_text_cb cb,
	void *user);

/* Where a visit lives: the visit named by visit_id, or else the one whose
 * invite hashes to invite_sha256 (one of the two may be NULL), if it is
 * not closed. cb gets its instance_id and that instance's servers (a JSON
 * array; "[]" if the instance never said), valid only during the call, or
 * STORE_NOT_FOUND. Runs on the analytics lane: it sees every write this
 * store queued before it, and writes of other instances once committed. */
typedef void (*store_locate_cb)(store_rc rc, const char *instance_id,
	const char *servers_json, void *user);
int store_visit_locate(store *st, const char *visit_id, const char *invite_sha256,
	store_locate_cb cb, void *user);

/* --- reports, erasure and retention (docs/storage.md, "Reports") ------------------- */

/* Lower the calling thread's CPU priority to the analytics lane's (nice
 * 10; Linux only, where nice is per thread; never raises it). The lane's
 * thread does this itself; a thread that builds reports from the lane's
 * rows (the plugin's reports thread, alliance-report needs nothing) calls
 * it too, so that a report keeping a core busy yields at once when the
 * writer or a media thread wakes on that core. */
void store_background_thread(void);

/* Recompute the visit's row of visit_summaries from the base tables (one
 * upsert): codes, modality, the client's visit number (the nth of the
 * client's ended visits by created_at; kept from the first summary on, so
 * that erasing older visits does not renumber), research consent (1 only
 * if every client join of the visit gave it), the latest end pulses'
 * instruments and final `total` scores (client and therapist), the
 * connection quality of the client's end pulse context (the whole visit:
 * mean MOS and loss % of both paths, freeze seconds; NULL for in-person
 * visits and visits without measured media), and the visit's incident and
 * alert counts. STORE_NOT_FOUND for an unknown visit. The plugin calls it
 * when a visit ends, when an end answer is stored and when it closes. */
int store_visit_summarize(store *st, const char *visit_id,
	store_done_cb cb, void *user);

/* Erase every row about a client, in one transaction: their visits and
 * every row hanging off them (participants, pulses, answers, answer items,
 * scores, alerts, events, quality samples, incidents, summaries), any
 * participant row carrying their code, and server-level events whose
 * details name their code or one of their visits. cb gets the number of
 * rows deleted. Refused with STORE_REFUSED (nothing erased) while the
 * client has a visit that is not closed, on any instance: its later writes
 * would bring rows back. An `events` row (visit_id NULL, kind "forget", detail
 * {"rows":n,"visits":k,"tables":{table:n,...}}, no codes) records it at
 * at_us. Afterwards the WAL is checkpointed (TRUNCATE, best effort) so the
 * erased pages (zeroed by secure_delete) reach the main file and the old
 * page images leave the WAL. */
int store_forget_client(store *st, const char *client_code, gint64 at_us,
	store_count_cb cb, void *user);

/* Retention: erase (as store_forget_client does) every visit whose latest
 * time (created, admitted, ended or closed) is before now_us - days days,
 * and log an `events` row (kind "retention", detail {"days","cutoff",
 * "rows","visits","tables"}). days >= 1; cb gets the rows deleted. */
int store_retention(store *st, int days, gint64 now_us,
	store_count_cb cb, void *user);

/* What store_report_rows() reads; docs/storage.md lists every field. */
typedef enum store_report_what {
	STORE_READ_VISITS,      /* one row per visit: visits + visit_summaries */
	STORE_READ_END_SCORES,  /* every score of the client's latest final end answer */
	STORE_READ_ANSWERS,     /* one row per answer item (the answers export) */
	STORE_READ_SAMPLES,     /* one row per quality sample (the samples export);
	                         * its metrics as the stored text, "metrics_raw" */
	STORE_READ_VISIT,       /* filter.visit_id in full: one nested row */
} store_report_what;

/* Filters of a report read; NULL / 0 = no restriction. */
typedef struct store_report_filter {
	const char *visit_id;
	const char *therapist_code;
	const char *client_code;
	const char *modality;              /* "video" | "in_person" */
	const char *instrument_id;         /* the client's end instrument */
	gint64 from_us, to_us;             /* visits created in [from_us, to_us) */
	gboolean research_only;            /* only visits (and answers) with research consent */
	int limit;                         /* STORE_READ_VISITS: at most this many (<= 0: all) */
} store_report_filter;

/* A read for the reports: row(row_json, user) runs once per row, in order,
 * on the writer thread, inside one read transaction (one consistent state
 * of the database); then done(rc, error, user) runs once. Rows are JSON
 * objects whose keys are the column names; NULL columns are null.
 * STORE_READ_VISIT needs filter->visit_id and gives one row, or
 * STORE_NOT_FOUND. Returns -1 (no callback) for a NULL store, row or
 * filter, or an unknown `what`. */
int store_report_rows(store *st, store_report_what what,
	const store_report_filter *filter, store_row_cb row, store_done_cb done,
	void *user);

/* A name for an rc ("ok", "already_final", ...). */
const char *store_rc_name(store_rc rc);

#endif
