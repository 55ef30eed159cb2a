/*
 * store_backend.h — what a storage backend provides to store.c.
 *
 * Internal to the store: callers include store.h only. store.c owns the
 * queues, the threads and the callbacks; a backend (store_sqlite.c;
 * later a PostgreSQL one) owns a connection and turns each operation into
 * one transaction. A backend's open function prepares its connections (and
 * runs its migrations) on the caller's thread, then hands them to
 * store_start(): one for the writer, one for the analytics lane. From then
 * on every operation on a connection is called from its lane's thread
 * only, one at a time, so a backend needs no locking of its own.
 *
 * Every operation returns a store_rc and, unless STORE_OK, a sentence in
 * err (never codes, answers, keys or invites). The records passed in are
 * the store's copies; a backend must not keep pointers into them.
 */
#ifndef ALLIANCE_STORE_BACKEND_H
#define ALLIANCE_STORE_BACKEND_H

#include "store.h"

#include <jansson.h>

typedef struct store_backend store_backend;    /* defined by each backend */

typedef struct store_sample_rec {
	const char *visit_id, *leg, *medium, *metrics_json;
	gint64 at_us;
} store_sample_rec;

typedef struct store_backend_ops {
	const char *name;                  /* "sqlite", "postgresql" */
	store_rc (*visit_create)(store_backend *b, const store_visit_rec *r,
		char *err, size_t errlen);
	store_rc (*visit_state)(store_backend *b, const char *visit_id,
		const char *state, gint64 at_us, char *err, size_t errlen);
	store_rc (*visit_ended)(store_backend *b, const char *visit_id,
		const char *end_reason, gint64 at_us, char *err, size_t errlen);
	store_rc (*repair)(store_backend *b, const char *instance_id, gint64 now_us,
		gint64 *visits, char *err, size_t errlen);
	store_rc (*instance_seen)(store_backend *b, const char *instance_id,
		const char *servers_json, gint64 started_at_us, gint64 seen_at_us,
		char *err, size_t errlen);
	/* *instance_id and *servers_json: g_malloc'd, when STORE_OK */
	store_rc (*visit_locate)(store_backend *b, const char *visit_id,
		const char *invite_sha256, char **instance_id, char **servers_json,
		char *err, size_t errlen);
	store_rc (*participant_join)(store_backend *b, const char *visit_id,
		const char *role, const char *code, gboolean research_consent,
		const char *language, gint64 at_us, char *err, size_t errlen);
	store_rc (*pulse_create)(store_backend *b, const store_pulse_rec *r,
		char *err, size_t errlen);
	/* status is "delivered" or "expired" (dismissals use dismiss) */
	store_rc (*pulse_status)(store_backend *b, const char *pulse_id,
		const char *status, gint64 at_us, char *err, size_t errlen);
	store_rc (*answer)(store_backend *b, const store_answer_rec *r,
		char *err, size_t errlen);
	store_rc (*dismiss)(store_backend *b, const char *pulse_id, gint64 at_us,
		char *err, size_t errlen);
	store_rc (*alert)(store_backend *b, const store_alert_rec *r,
		char *err, size_t errlen);
	store_rc (*event)(store_backend *b, const char *visit_id, const char *kind,
		const char *detail_json, gint64 at_us, char *err, size_t errlen);
	/* sets pulses.quality_json; STORE_NOT_FOUND for an unknown pulse */
	store_rc (*pulse_quality)(store_backend *b, const char *pulse_id,
		const char *quality_json, char *err, size_t errlen);
	store_rc (*incident)(store_backend *b, const store_incident_rec *r,
		char *err, size_t errlen);
	/* n samples in one transaction; returns how many could not be stored */
	guint (*samples)(store_backend *b, const store_sample_rec *s, guint n);
	/* appends doubles to out, oldest first */
	store_rc (*client_scores)(store_backend *b, const char *client_code,
		const char *instrument_id, const char *score_name,
		const char *exclude_visit_id, int limit, GArray *out,
		char *err, size_t errlen);
	/* the object described at store_visit_quality(), in *out (a new
	 * reference) when STORE_OK; one consistent read */
	store_rc (*visit_quality)(store_backend *b, const char *visit_id,
		json_t **out, char *err, size_t errlen);
	/* reports, erasure, retention (store.h) */
	store_rc (*visit_summarize)(store_backend *b, const char *visit_id,
		char *err, size_t errlen);
	store_rc (*forget_client)(store_backend *b, const char *client_code,
		gint64 at_us, gint64 *rows, char *err, size_t errlen);
	store_rc (*retention)(store_backend *b, int days, gint64 now_us,
		gint64 *rows, char *err, size_t errlen);
	store_rc (*report_rows)(store_backend *b, store_report_what what,
		const store_report_filter *f, store_row_cb row, void *user,
		char *err, size_t errlen);
	void (*close)(store_backend *b);
} store_backend_ops;

/* Start the store's threads for opened backends: the writer on b and, if
 * reader is not NULL, the analytics lane on that second connection to the
 * same database. Takes ownership of both (closed with ops->close on
 * failure too). path names the database in messages; warning (may be
 * NULL) is copied for store_warning(). STORE_START_READ_ONLY: refuse every
 * write (a store opened for reading). */
#define STORE_START_READ_ONLY 0x1u
store *store_start(const char *path, const store_backend_ops *ops,
	store_backend *b, store_backend *reader, unsigned flags, const char *warning,
	char *err, size_t errlen);

#endif
