/*
 * shell_reports.c — the requests that read or erase history, off the call
 * path: the supervisor's `report` and `forget` and the therapist's
 * `client_history` are answered asynchronously (an event with the
 * request's transaction, PROTOCOL.md v1.1 "Scale") from a thread of their
 * own, whose reads and erasures run on the store's analytics lane. Neither a Janus
 * request thread nor the message thread nor the store's writer ever waits
 * for a report; retention (daily) goes the same way.
 */
#include "shell.h"
#include "report.h"
#include "report_history.h"

#include <string.h>

#include <debug.h>
#include <utils.h>

static ap_plugin *ap;

void shell_reports_init(ap_plugin *plugin) {
	ap = plugin;
}

/* --- reports, erasure, retention ---------------------------------------- */
#define REPORT_WAIT_US (10 * G_USEC_PER_SEC)
#define FORGET_WAIT_US (30 * G_USEC_PER_SEC)

/* `report` (supervisor): read the store (its analytics lane) and build the
 * report, waiting for each read at most REPORT_WAIT_US. */
static json_t *request_report(ap_session *s, const proto_request *req) {
	json_t *refusal = NULL;
	if(shell_auth_supervisor(s, req, &refusal) < 0)
		return refusal;
	report_env env;
	report_env_init(&env);
	env.instruments = ap->instruments;
	env.ni_margin = ap->settings.ni_margin;
	proto_error err;
	gint64 started = g_get_monotonic_time();
	json_t *r = report_build(ap->db, req->report_kind, &req->filters, &env, REPORT_WAIT_US, &err);
	if(r == NULL) {
		JANUS_LOG(LOG_WARN, "[%s] %s report refused: %d %s\n", ALLIANCE_PACKAGE,
			proto_report_kind_name(req->report_kind), err.code, proto_error_slug(err.code));
		return proto_error_json(&err);
	}
	JANUS_LOG(LOG_INFO, "[%s] %s report in %" G_GINT64_FORMAT " ms\n", ALLIANCE_PACKAGE,
		proto_report_kind_name(req->report_kind), (g_get_monotonic_time() - started) / 1000);
	return r;
}

/* `client_history` (therapist key or token): the visit's client's stored
 * visits with this therapist (report_history.h); 475 for a visit of
 * another therapist, 476 for a visit never stored. Nothing about the
 * client is logged, only the refusal's code. */
static json_t *request_client_history(ap_session *s, const proto_request *req) {
	json_t *refusal = NULL;
	char code[AUTH_CODE_MAX + 1];
	if(shell_auth_therapist(s, req, code, &refusal) == NULL)
		return refusal;
	proto_error err;
	gint64 started = g_get_monotonic_time();
	json_t *r = report_history_build(ap->db, code, req->visit_id, req->filters.limit, REPORT_WAIT_US, &err);
	if(r == NULL) {
		if(err.code == PROTO_ERR_UNAUTHORIZED)
			shell_credential_refused(s);     /* probing other therapists' visits counts */
		JANUS_LOG(LOG_VERB, "[%s] client_history refused: %d %s\n", ALLIANCE_PACKAGE,
			err.code, proto_error_slug(err.code));
		return proto_error_json(&err);
	}
	JANUS_LOG(LOG_VERB, "[%s] client_history (%d visits) in %" G_GINT64_FORMAT " ms\n", ALLIANCE_PACKAGE,
		(int)json_integer_value(json_object_get(r, "n")), (g_get_monotonic_time() - started) / 1000);
	return r;
}

typedef struct erase_wait {
	volatile gint refs;                  /* the store callback's and the waiter's */
	GMutex m;
	GCond c;
	gboolean done;
	store_rc rc;
	gint64 rows;
} erase_wait;

static void erase_wait_unref(erase_wait *w) {
	if(!g_atomic_int_dec_and_test(&w->refs))
		return;
	g_mutex_clear(&w->m);
	g_cond_clear(&w->c);
	g_free(w);
}

static void erased(store_rc rc, gint64 rows, const char *error, void *user) {
	erase_wait *w = user;
	if(rc != STORE_OK)
		JANUS_LOG(LOG_ERR, "[%s] store: erasure failed: %s\n", ALLIANCE_PACKAGE,
			error ? error : store_rc_name(rc));
	g_mutex_lock(&w->m);
	w->rc = rc;
	w->rows = rows;
	w->done = TRUE;
	g_cond_signal(&w->c);
	g_mutex_unlock(&w->m);
	erase_wait_unref(w);
}

/* `forget` (supervisor): erase every row about a client. Refused
 * while the client has an open visit (its later writes would bring rows
 * back); the erasure is queued under visits_mutex, so a visit created
 * after the check is stored after the erasure, as a new visit. */
static json_t *request_forget(ap_session *s, const proto_request *req) {
	json_t *refusal = NULL;
	if(shell_auth_supervisor(s, req, &refusal) < 0)
		return refusal;
	erase_wait *w = g_new0(erase_wait, 1);
	g_atomic_int_set(&w->refs, 2);
	g_mutex_init(&w->m);
	g_cond_init(&w->c);
	janus_mutex_lock(&ap->visits_mutex);
	GHashTableIter iter;
	gpointer value;
	g_hash_table_iter_init(&iter, ap->visits);
	while(g_hash_table_iter_next(&iter, NULL, &value)) {
		ap_visit *av = value;
		if(!strcmp(av->v.client_code, req->client_code)) {
			janus_mutex_unlock(&ap->visits_mutex);
			g_atomic_int_set(&w->refs, 1);
			erase_wait_unref(w);
			return shell_error_json(PROTO_ERR_WRONG_STATE,
				"The client has an open visit: erase after it has ended and closed");
		}
	}
	int rc = store_forget_client(ap->db, req->client_code, janus_get_real_time(), erased, w);
	janus_mutex_unlock(&ap->visits_mutex);
	if(rc < 0) {
		g_atomic_int_set(&w->refs, 1);
		erase_wait_unref(w);
		return shell_error_json(PROTO_ERR_STORE, "The erasure could not be queued");
	}
	gint64 until = g_get_monotonic_time() + FORGET_WAIT_US;
	g_mutex_lock(&w->m);
	while(!w->done)
		if(!g_cond_wait_until(&w->c, &w->m, until))
			break;
	gboolean done = w->done;
	store_rc src = w->rc;
	gint64 rows = w->rows;
	g_mutex_unlock(&w->m);
	erase_wait_unref(w);
	if(!done)
		return shell_error_json(PROTO_ERR_STORE, "The erasure did not finish within %d s; "
			"it stays queued and will complete", (int)(FORGET_WAIT_US / G_USEC_PER_SEC));
	if(src == STORE_REFUSED)          /* a visit of the client open on another instance */
		return shell_error_json(PROTO_ERR_WRONG_STATE,
			"The client has an open visit: erase after it has ended and closed");
	if(src != STORE_OK)
		return shell_error_json(PROTO_ERR_STORE, "The erasure failed (%s); nothing was erased", store_rc_name(src));
	JANUS_LOG(LOG_INFO, "[%s] a client's data was erased on request (%" G_GINT64_FORMAT " rows)\n",
		ALLIANCE_PACKAGE, rows);
	shell_notify(NULL, "forgotten", json_pack("{s:I}", "rows", (json_int_t)rows));
	return json_pack("{s:s, s:I}", "alliance", "forgotten", "rows", (json_int_t)rows);
}

static void retention_done(store_rc rc, gint64 rows, const char *error, void *user) {
	if(rc != STORE_OK)
		JANUS_LOG(LOG_ERR, "[%s] store: retention failed: %s\n", ALLIANCE_PACKAGE,
			error ? error : store_rc_name(rc));
	else if(rows > 0)
		JANUS_LOG(LOG_INFO, "[%s] retention: %" G_GINT64_FORMAT " rows of old visits erased\n",
			ALLIANCE_PACKAGE, rows);
}

/* Called at start and by the timer: applies retention_days once a day. */
void shell_retention_tick(gint64 now_real) {
	static gint64 next_at = 0;           /* timer thread (and init, before it starts) */
	if(ap->settings.retention_days <= 0 || now_real < next_at)
		return;
	next_at = now_real + 86400LL * G_USEC_PER_SEC;
	if(store_retention(ap->db, ap->settings.retention_days, now_real, retention_done, NULL) < 0)
		JANUS_LOG(LOG_ERR, "[%s] retention could not be queued\n", ALLIANCE_PACKAGE);
}

/* --- the thread ------------------------------------------------------------------ */
typedef struct report_job {
	ap_session *s;          /* reference held */
	char *transaction;
	json_t *message;        /* the request's strings point into it */
} report_job;

static GAsyncQueue *jobs = NULL;
static GThread *thread = NULL;
static report_job exit_job;

static void job_free(report_job *j) {
	if(j == NULL || j == &exit_job)
		return;
	janus_refcount_decrease(&j->s->ref);
	g_free(j->transaction);
	json_decref(j->message);
	g_free(j);
}

void shell_reports_enqueue(ap_session *s, char *transaction, json_t *message) {
	report_job *j = g_new0(report_job, 1);
	j->s = s;
	j->transaction = transaction;
	j->message = message;
	g_async_queue_push(jobs, j);
}

static void run(report_job *j) {
	proto_request req;
	proto_error err;
	json_t *answer;
	if(proto_parse(j->message, &req, &err) < 0)
		answer = proto_error_json(&err);      /* parsed before; defensive */
	else if(req.kind == PROTO_REPORT)
		answer = request_report(j->s, &req);
	else if(req.kind == PROTO_CLIENT_HISTORY)
		answer = request_client_history(j->s, &req);
	else
		answer = request_forget(j->s, &req);
	shell_push(j->s, j->transaction, answer, NULL);
}

static void *reports_main(void *data) {
	store_background_thread();     /* a long report yields to the calls' threads */
	for(;;) {
		report_job *j = g_async_queue_pop(jobs);
		if(j == &exit_job)
			break;
		if(!g_atomic_int_get(&j->s->destroyed))
			run(j);
		job_free(j);
	}
	return NULL;
}

int shell_reports_start(void) {
	jobs = g_async_queue_new_full((GDestroyNotify)job_free);
	GError *error = NULL;
	thread = g_thread_try_new("alliance reports", reports_main, NULL, &error);
	if(error != NULL) {
		JANUS_LOG(LOG_ERR, "[%s] cannot start the reports thread: %s\n", ALLIANCE_PACKAGE, error->message);
		g_error_free(error);
		g_async_queue_unref(jobs);
		jobs = NULL;
		return -1;
	}
	return 0;
}

void shell_reports_stop(void) {
	if(jobs == NULL)
		return;
	g_async_queue_push(jobs, &exit_job);
	if(thread != NULL) {
		g_thread_join(thread);
		thread = NULL;
	}
	report_job *j;
	while((j = g_async_queue_try_pop(jobs)) != NULL)
		job_free(j);                     /* nobody to answer: see shell_requests_stop() */
	g_async_queue_unref(jobs);
	jobs = NULL;
}
