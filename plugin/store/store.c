/*
 * store.c — see store.h. The backend-neutral half of the store: the job
 * queue, the writer thread and the callbacks. The SQL lives in the
 * backends (store_sqlite.c), reached through store_backend_ops.
 *
 * Two lanes, each a queue, a thread and a connection of its own: the
 * writer (everything a call needs: visits, pulses, answers, samples,
 * incidents) and the analytics lane (reports, exports, a visit's quality
 * read, erasure, retention), so a long report never holds up an answer's
 * acknowledgement. An analytics job first waits until the writer has run
 * everything queued before it (a barrier: one no-op job on the writer), so
 * it still sees every write queued before it. A store opened for reading
 * only has one lane and refuses every write.
 *
 * Invariants:
 * - jobs of a lane run in its queue order, one at a time, on its thread,
 *   which is the only thread that touches its connection after
 *   store_start();
 * - every accepted job's callback is called exactly once, after its
 *   transaction ended; store_close() runs the queue dry before stopping;
 * - samples_queued counts the JOB_SAMPLE entries in `jobs`, and only they
 *   are ever refused for lack of room.
 *
 * Consecutive samples at the head of the queue are handed to the backend
 * as one batch (one transaction, up to SAMPLE_BATCH): at synchronous=FULL
 * every commit costs an fsync, and samples have no callback to wait for.
 *
 * Faults (a full disk, a database locked by another process, an I/O
 * error: STORE_BUSY / STORE_UNAVAILABLE from the backend) are transient.
 * A job that records what happened (a visit, a pulse, a state, an alert,
 * an incident: must_keep()) is not given up: it stays at the head of the
 * queue and is retried with a growing pause (RETRY_MIN_US .. RETRY_MAX_US)
 * until the database takes it, so the store catches up by itself, in
 * order, when the fault clears. Meanwhile the store is "degraded": answers
 * and dismissals are refused at once (their callback says why: the
 * participant is told store_failed and may send again — an answer is never
 * acknowledged unless committed), reads fail at once, and samples are
 * dropped (counted). store_close() retries for at most CLOSE_RETRY_US,
 * then gives up on what is left, each job's callback saying so.
 */
#include "store_backend.h"
#include "store_sqlite.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define SAMPLE_BATCH 256
#define ERRLEN 256
#define RETRY_MIN_US (200 * 1000)
#define RETRY_MAX_US (5 * 1000 * 1000)
#define CLOSE_RETRY_US (10 * 1000 * 1000)

typedef enum job_kind {
	JOB_SYNC,
	JOB_VISIT_CREATE,
	JOB_VISIT_STATE,
	JOB_VISIT_ENDED,
	JOB_REPAIR,
	JOB_PARTICIPANT,
	JOB_PULSE_CREATE,
	JOB_PULSE_STATUS,
	JOB_ANSWER,
	JOB_DISMISS,
	JOB_ALERT,
	JOB_EVENT,
	JOB_SAMPLE,
	JOB_CLIENT_SCORES,
	JOB_PULSE_QUALITY,
	JOB_INCIDENT,
	JOB_VISIT_QUALITY,
	JOB_VISIT_SUMMARIZE,
	JOB_FORGET,
	JOB_RETENTION,
	JOB_REPORT_ROWS,
	JOB_INSTANCE_SEEN,
	JOB_VISIT_LOCATE,
} job_kind;

typedef struct sync_wait {
	GMutex lock;
	GCond cond;
	gboolean done;
} sync_wait;

typedef struct store_job {
	job_kind kind;
	store_done_cb done;
	store_values_cb values;
	store_text_cb text;
	store_count_cb count;
	store_row_cb row;
	store_locate_cb locate;
	void *user;
	GStringChunk *strings;             /* every string of the job */
	union {
		store_visit_rec visit;
		struct {                       /* visit state, pulse status, dismiss */
			const char *id, *status;
			gint64 at_us;
		} change;
		struct {
			const char *visit_id, *role, *code, *language;
			gboolean consent;
			gint64 at_us;
		} join;
		store_pulse_rec pulse;
		store_answer_rec answer;       /* items/scores arrays are g_new'd */
		store_alert_rec alert;
		struct {
			const char *visit_id, *kind, *detail_json;
			gint64 at_us;
		} event;
		store_sample_rec sample;
		struct {
			const char *pulse_id, *quality_json;
		} quality;
		store_incident_rec incident;
		const char *visit_id;          /* visit quality */
		struct {
			const char *client_code, *instrument_id, *score_name, *exclude;
			int limit;
		} scores;
		sync_wait *sync;
		struct {                       /* forget, retention, repair */
			const char *client_code, *instance_id;
			int days;
			gint64 at_us;
		} erase;
		struct {
			store_report_what what;
			store_report_filter filter;
		} report;
		struct {
			const char *instance_id, *servers_json;
			gint64 started_at_us, seen_at_us;
		} instance;
		struct {
			const char *visit_id, *invite_sha256;
		} locate;
	} u;
} store_job;

struct store {
	char *path;
	char *warning;
	const store_backend_ops *ops;
	store_backend *backend;
	GThread *thread;
	gboolean read_only;                /* every write refused (alliance-report) */
	/* the analytics lane (NULL thread: everything on the writer) */
	store_backend *reader;
	GThread *athread;
	GQueue ajobs;
	GCond awake;
	gboolean aclosing, astopped;
	GMutex lock;                       /* guards everything below */
	GCond wake;                        /* jobs arrived, or closing */
	GQueue jobs;
	guint samples_queued;
	guint64 dropped;
	guint64 failed;                    /* jobs refused for a fault (answers, reads, ...) */
	gboolean closing;                  /* store_close() was called */
	gint64 closing_since;              /* monotonic */
	gboolean stopped;                  /* the writer thread has exited */
	/* the writer's transaction times (store_health's commit_ms_p99) */
	guint32 commit_us[STORE_COMMIT_RING];
	guint64 commits;
	/* faults: a must-keep job waits at the head for the database */
	gboolean degraded;
	gint64 retry_at, retry_pause;      /* monotonic */
	char degraded_why[ERRLEN];
};

static gpointer writer_main(gpointer data);
static gpointer analytics_main(gpointer data);

/* Which lane a job runs on, and whether it writes. */
static gboolean analytics_job(job_kind k) {
	return k == JOB_REPORT_ROWS || k == JOB_VISIT_QUALITY || k == JOB_FORGET || k == JOB_RETENTION ||
		k == JOB_VISIT_LOCATE;
}

static gboolean writes(job_kind k) {
	return k != JOB_SYNC && k != JOB_CLIENT_SCORES && k != JOB_VISIT_QUALITY && k != JOB_REPORT_ROWS &&
		k != JOB_VISIT_LOCATE;
}

/* --- jobs ------------------------------------------------------------------------------ */

static store_job *job_new(job_kind kind, store_done_cb done, void *user) {
	store_job *j = g_new0(store_job, 1);
	j->kind = kind;
	j->done = done;
	j->user = user;
	j->strings = g_string_chunk_new(128);
	return j;
}

/* A copy owned by the job; NULL stays NULL. */
static const char *jstr(store_job *j, const char *s) {
	return s ? g_string_chunk_insert(j->strings, s) : NULL;
}

static void job_free(store_job *j) {
	if(j->kind == JOB_ANSWER) {
		g_free((gpointer)j->u.answer.items);
		g_free((gpointer)j->u.answer.scores);
	}
	g_string_chunk_free(j->strings);
	g_free(j);
}

/* Queue a job, or refuse it (freed, -1) if the writer has stopped or it is
 * a sample and the sample queue is full. */
static int enqueue(store *st, store_job *j) {
	if(st->read_only && writes(j->kind)) {
		job_free(j);
		return -1;
	}
	g_mutex_lock(&st->lock);
	if(st->athread && analytics_job(j->kind)) {
		if(st->astopped) {
			g_mutex_unlock(&st->lock);
			job_free(j);
			return -1;
		}
		g_queue_push_tail(&st->ajobs, j);
		g_cond_signal(&st->awake);
		g_mutex_unlock(&st->lock);
		return 0;
	}
	if(st->stopped) {
		if(j->kind == JOB_SAMPLE)
			st->dropped++;
		g_mutex_unlock(&st->lock);
		job_free(j);
		return -1;
	}
	if(j->kind == JOB_SAMPLE) {
		if(st->samples_queued >= STORE_SAMPLE_QUEUE_MAX) {
			st->dropped++;
			g_mutex_unlock(&st->lock);
			job_free(j);
			return -1;
		}
		st->samples_queued++;
	}
	g_queue_push_tail(&st->jobs, j);
	g_cond_signal(&st->wake);
	g_mutex_unlock(&st->lock);
	return 0;
}

/* --- lifetime ------------------------------------------------------------------------ */

store *store_start(const char *path, const store_backend_ops *ops,
		store_backend *b, store_backend *reader, unsigned flags, const char *warning,
		char *err, size_t errlen) {
	store *st = g_new0(store, 1);
	st->path = g_strdup(path);
	st->warning = g_strdup(warning);
	st->ops = ops;
	st->backend = b;
	st->reader = reader;
	st->read_only = (flags & STORE_START_READ_ONLY) != 0;
	g_mutex_init(&st->lock);
	g_cond_init(&st->wake);
	g_cond_init(&st->awake);
	g_queue_init(&st->jobs);
	g_queue_init(&st->ajobs);
	GError *gerr = NULL;
	st->thread = g_thread_try_new("ap-store", writer_main, st, &gerr);
	if(st->thread != NULL && reader != NULL)
		st->athread = g_thread_try_new("ap-store-reports", analytics_main, st, &gerr);
	if(st->thread == NULL || (reader != NULL && st->athread == NULL)) {
		g_snprintf(err, errlen, "cannot start the store's threads: %s",
			gerr ? gerr->message : "unknown error");
		g_clear_error(&gerr);
		if(st->thread) {
			g_mutex_lock(&st->lock);
			st->closing = TRUE;
			g_cond_signal(&st->wake);
			g_mutex_unlock(&st->lock);
			g_thread_join(st->thread);
		}
		ops->close(b);
		if(reader)
			ops->close(reader);
		g_mutex_clear(&st->lock);
		g_cond_clear(&st->wake);
		g_cond_clear(&st->awake);
		g_free(st->path);
		g_free(st->warning);
		g_free(st);
		return NULL;
	}
	return st;
}

void store_close(store *st) {
	if(st == NULL)
		return;
	/* the analytics lane first (its barriers need the writer), then the
	 * writer; each runs its queue dry */
	if(st->athread) {
		g_mutex_lock(&st->lock);
		st->aclosing = TRUE;
		g_cond_signal(&st->awake);
		g_mutex_unlock(&st->lock);
		g_thread_join(st->athread);
		st->ops->close(st->reader);
	}
	g_mutex_lock(&st->lock);
	st->closing = TRUE;
	st->closing_since = g_get_monotonic_time();
	g_cond_signal(&st->wake);
	g_mutex_unlock(&st->lock);
	g_thread_join(st->thread);     /* returns once the queue ran dry */
	st->ops->close(st->backend);
	g_mutex_clear(&st->lock);
	g_cond_clear(&st->wake);
	g_cond_clear(&st->awake);
	g_free(st->path);
	g_free(st->warning);
	g_free(st);
}

const char *store_warning(const store *st) {
	return st ? st->warning : NULL;
}

const char *store_path(const store *st) {
	return st ? st->path : NULL;
}

guint store_queue_depth(store *st) {
	g_mutex_lock(&st->lock);
	guint n = st->jobs.length + st->ajobs.length;
	g_mutex_unlock(&st->lock);
	return n;
}

guint64 store_dropped_samples(store *st) {
	g_mutex_lock(&st->lock);
	guint64 n = st->dropped;
	g_mutex_unlock(&st->lock);
	return n;
}

static int cmp_u32(const void *a, const void *b) {
	guint32 x = *(const guint32 *)a, y = *(const guint32 *)b;
	return (x > y) - (x < y);
}

double store_percentile_ms(guint32 *us, guint n, double pct) {
	if(n == 0 || !(pct > 0.0) || pct > 100.0)
		return -1.0;
	qsort(us, n, sizeof(*us), cmp_u32);
	/* nearest rank: the smallest value with at least pct % at or below it */
	double rank = ceil(pct / 100.0 * (double)n);
	guint i = rank < 1.0 ? 0 : (guint)rank - 1;
	if(i >= n)
		i = n - 1;
	return us[i] / 1000.0;
}

/* One writer transaction took us microseconds (under st->lock). */
static void commit_timed(store *st, gint64 us) {
	st->commit_us[st->commits % STORE_COMMIT_RING] = us < 0 ? 0 : (us > G_MAXUINT32 ? G_MAXUINT32 : (guint32)us);
	st->commits++;
}

void store_health_get(store *st, store_health *h) {
	memset(h, 0, sizeof(*h));
	h->commit_ms_p99 = -1.0;
	if(st == NULL)
		return;
	guint32 times[STORE_COMMIT_RING];
	g_mutex_lock(&st->lock);
	h->queue = st->jobs.length;
	h->analytics_queue = st->ajobs.length;
	h->samples_dropped = st->dropped;
	h->failed = st->failed;
	h->degraded = st->degraded;
	g_strlcpy(h->why, st->degraded ? st->degraded_why : "", sizeof(h->why));
	h->commits = st->commits;
	guint n = st->commits < STORE_COMMIT_RING ? (guint)st->commits : STORE_COMMIT_RING;
	memcpy(times, st->commit_us, n * sizeof(times[0]));
	g_mutex_unlock(&st->lock);
	h->commit_ms_p99 = store_percentile_ms(times, n, 99.0);   /* sorted outside the lock */
	store_sqlite_memory(&h->sqlite_bytes, &h->sqlite_peak_bytes);
}

/* Wait until every job queued on one lane before this call has run. */
static int lane_sync(store *st, gboolean analytics) {
	sync_wait w;
	g_mutex_init(&w.lock);
	g_cond_init(&w.cond);
	w.done = FALSE;
	store_job *j = job_new(JOB_SYNC, NULL, NULL);
	j->u.sync = &w;
	int rc = 0;
	g_mutex_lock(&st->lock);
	if(analytics ? st->astopped : st->stopped) {
		rc = -1;
	} else {
		g_queue_push_tail(analytics ? &st->ajobs : &st->jobs, j);
		g_cond_signal(analytics ? &st->awake : &st->wake);
	}
	g_mutex_unlock(&st->lock);
	if(rc == 0) {
		g_mutex_lock(&w.lock);
		while(!w.done)
			g_cond_wait(&w.cond, &w.lock);
		g_mutex_unlock(&w.lock);
	} else {
		job_free(j);
	}
	g_mutex_clear(&w.lock);
	g_cond_clear(&w.cond);
	return rc;
}

int store_sync(store *st) {
	if(st == NULL || g_thread_self() == st->thread || (st->athread && g_thread_self() == st->athread))
		return -1;
	int rc = lane_sync(st, FALSE);
	if(rc == 0 && st->athread)
		rc = lane_sync(st, TRUE);      /* its barrier makes it wait for the writer too */
	return rc;
}

const char *store_backend_name(const store *st) {
	return st && st->ops ? st->ops->name : "none";
}

const char *store_rc_name(store_rc rc) {
	switch(rc) {
		case STORE_OK: return "ok";
		case STORE_ERR: return "error";
		case STORE_ALREADY_FINAL: return "already_final";
		case STORE_NOT_FOUND: return "not_found";
		case STORE_BUSY: return "busy";
		case STORE_UNAVAILABLE: return "unavailable";
		case STORE_REFUSED: return "refused";
	}
	return "unknown";
}

/* --- the writer thread ------------------------------------------------------------- */

static void run_samples(store *st, store_job *first) {
	store_job *batch[SAMPLE_BATCH];
	store_sample_rec recs[SAMPLE_BATCH];
	guint n = 0;
	batch[n++] = first;
	g_mutex_lock(&st->lock);
	while(n < SAMPLE_BATCH) {
		store_job *next = g_queue_peek_head(&st->jobs);
		if(next == NULL || next->kind != JOB_SAMPLE)
			break;
		batch[n++] = g_queue_pop_head(&st->jobs);
	}
	st->samples_queued -= n;
	g_mutex_unlock(&st->lock);
	for(guint i = 0; i < n; i++)
		recs[i] = batch[i]->u.sample;
	gint64 started = g_get_monotonic_time();
	guint failed = st->ops->samples(st->backend, recs, n);
	gint64 took = g_get_monotonic_time() - started;
	g_mutex_lock(&st->lock);
	st->dropped += failed;
	commit_timed(st, took);
	g_mutex_unlock(&st->lock);
	for(guint i = 0; i < n; i++)
		job_free(batch[i]);
}

/* Jobs that record what happened: retried through faults, never dropped. */
static gboolean must_keep(job_kind k) {
	switch(k) {
		case JOB_SYNC: case JOB_VISIT_CREATE: case JOB_VISIT_STATE: case JOB_VISIT_ENDED:
		case JOB_PARTICIPANT: case JOB_PULSE_CREATE: case JOB_PULSE_STATUS: case JOB_ALERT:
		case JOB_EVENT: case JOB_PULSE_QUALITY: case JOB_INCIDENT: case JOB_VISIT_SUMMARIZE:
		case JOB_INSTANCE_SEEN:
			return TRUE;
		default:
			return FALSE;
	}
}

static gboolean transient(store_rc rc) {
	return rc == STORE_BUSY || rc == STORE_UNAVAILABLE;
}

/* Give a job its outcome without running it (the store is degraded, or
 * closing gave up): rc and a sentence; samples are counted as dropped. */
static void refuse_job(store *st, store_job *j, store_rc rc, const char *why) {
	/* counted first: whoever the callback wakes sees the count */
	g_mutex_lock(&st->lock);
	if(j->kind == JOB_SAMPLE)
		st->dropped++;
	else if(j->kind != JOB_SYNC)
		st->failed++;
	g_mutex_unlock(&st->lock);
	switch(j->kind) {
		case JOB_SAMPLE:
			break;
		case JOB_SYNC:
			g_mutex_lock(&j->u.sync->lock);
			j->u.sync->done = TRUE;
			g_cond_signal(&j->u.sync->cond);
			g_mutex_unlock(&j->u.sync->lock);
			break;
		case JOB_CLIENT_SCORES:
			if(j->values)
				j->values(rc, NULL, 0, j->user);
			break;
		case JOB_VISIT_QUALITY:
			if(j->text)
				j->text(rc, NULL, j->user);
			break;
		case JOB_FORGET: case JOB_RETENTION: case JOB_REPAIR:
			if(j->count)
				j->count(rc, 0, why, j->user);
			break;
		case JOB_VISIT_LOCATE:
			if(j->locate)
				j->locate(rc, NULL, NULL, j->user);
			break;
		default:
			if(j->done)
				j->done(rc, why, j->user);
			break;
	}
}

/* Run a job. Returns TRUE if it must be retried (a must-keep job met a
 * fault): then no callback ran and the job is not freed. */
static gboolean run_job(store *st, store_job *j, store_backend *b) {
	char err[ERRLEN] = "";
	store_rc rc = STORE_OK;
	const store_backend_ops *ops = st->ops;
	/* the writer's write transactions are timed (commit_ms_p99) */
	gboolean timed = b == st->backend && writes(j->kind);
	gint64 started = timed ? g_get_monotonic_time() : 0, took = 0;
	switch(j->kind) {
		case JOB_SYNC:
			g_mutex_lock(&j->u.sync->lock);
			j->u.sync->done = TRUE;
			g_cond_signal(&j->u.sync->cond);
			g_mutex_unlock(&j->u.sync->lock);
			return FALSE;
		case JOB_CLIENT_SCORES: {
			GArray *out = g_array_new(FALSE, FALSE, sizeof(double));
			rc = ops->client_scores(b, j->u.scores.client_code,
				j->u.scores.instrument_id, j->u.scores.score_name,
				j->u.scores.exclude, j->u.scores.limit, out, err, sizeof(err));
			if(j->values) {
				if(rc == STORE_OK)
					j->values(rc, (const double *)(void *)out->data, (int)out->len, j->user);
				else
					j->values(rc, NULL, 0, j->user);
			}
			g_array_free(out, TRUE);
			goto counted;
		}
		case JOB_VISIT_QUALITY: {
			json_t *out = NULL;
			rc = ops->visit_quality(b, j->u.visit_id, &out, err, sizeof(err));
			char *text = NULL;
			if(rc == STORE_OK && (text = json_dumps(out, JSON_COMPACT)) == NULL)
				rc = STORE_ERR;        /* out of memory */
			if(j->text)
				j->text(rc, rc == STORE_OK ? text : NULL, j->user);
			free(text);
			json_decref(out);
			goto counted;
		}
		case JOB_FORGET:
		case JOB_RETENTION:
		case JOB_REPAIR: {
			gint64 rows = 0;
			if(j->kind == JOB_REPAIR)
				rc = ops->repair(b, j->u.erase.instance_id, j->u.erase.at_us, &rows,
					err, sizeof(err));
			else if(j->kind == JOB_FORGET)
				rc = ops->forget_client(b, j->u.erase.client_code, j->u.erase.at_us,
					&rows, err, sizeof(err));
			else
				rc = ops->retention(b, j->u.erase.days, j->u.erase.at_us,
					&rows, err, sizeof(err));
			if(j->count)
				j->count(rc, rc == STORE_OK ? rows : 0,
					rc == STORE_OK ? NULL : (err[0] ? err : store_rc_name(rc)), j->user);
			goto counted;
		}
		case JOB_VISIT_LOCATE: {
			char *instance = NULL, *servers = NULL;
			rc = ops->visit_locate(b, j->u.locate.visit_id, j->u.locate.invite_sha256,
				&instance, &servers, err, sizeof(err));
			if(j->locate)
				j->locate(rc, rc == STORE_OK ? instance : NULL, rc == STORE_OK ? servers : NULL,
					j->user);
			g_free(instance);
			g_free(servers);
			goto counted;
		}
		case JOB_INSTANCE_SEEN:
			rc = ops->instance_seen(b, j->u.instance.instance_id, j->u.instance.servers_json,
				j->u.instance.started_at_us, j->u.instance.seen_at_us, err, sizeof(err));
			break;
		case JOB_REPORT_ROWS:
			rc = ops->report_rows(b, j->u.report.what, &j->u.report.filter, j->row,
				j->user, err, sizeof(err));
			break;
		case JOB_VISIT_SUMMARIZE:
			rc = ops->visit_summarize(b, j->u.visit_id, err, sizeof(err));
			break;
		case JOB_SAMPLE:
			return FALSE;              /* handled by run_samples() */
		case JOB_VISIT_CREATE:
			rc = ops->visit_create(b, &j->u.visit, err, sizeof(err));
			break;
		case JOB_VISIT_STATE:
			rc = ops->visit_state(b, j->u.change.id, j->u.change.status,
				j->u.change.at_us, err, sizeof(err));
			break;
		case JOB_VISIT_ENDED:
			rc = ops->visit_ended(b, j->u.change.id, j->u.change.status,
				j->u.change.at_us, err, sizeof(err));
			break;
		case JOB_PARTICIPANT:
			rc = ops->participant_join(b, j->u.join.visit_id, j->u.join.role,
				j->u.join.code, j->u.join.consent, j->u.join.language,
				j->u.join.at_us, err, sizeof(err));
			break;
		case JOB_PULSE_CREATE:
			rc = ops->pulse_create(b, &j->u.pulse, err, sizeof(err));
			break;
		case JOB_PULSE_STATUS:
			rc = ops->pulse_status(b, j->u.change.id, j->u.change.status,
				j->u.change.at_us, err, sizeof(err));
			break;
		case JOB_ANSWER:
			rc = ops->answer(b, &j->u.answer, err, sizeof(err));
			break;
		case JOB_DISMISS:
			rc = ops->dismiss(b, j->u.change.id, j->u.change.at_us, err, sizeof(err));
			break;
		case JOB_ALERT:
			rc = ops->alert(b, &j->u.alert, err, sizeof(err));
			break;
		case JOB_EVENT:
			rc = ops->event(b, j->u.event.visit_id, j->u.event.kind,
				j->u.event.detail_json, j->u.event.at_us, err, sizeof(err));
			break;
		case JOB_PULSE_QUALITY:
			rc = ops->pulse_quality(b, j->u.quality.pulse_id,
				j->u.quality.quality_json, err, sizeof(err));
			break;
		case JOB_INCIDENT:
			rc = ops->incident(b, &j->u.incident, err, sizeof(err));
			break;
	}
	took = timed ? g_get_monotonic_time() - started : 0;
	if(must_keep(j->kind) && transient(rc)) {
		g_mutex_lock(&st->lock);
		if(timed)
			commit_timed(st, took);
		gboolean give_up = st->closing && g_get_monotonic_time() - st->closing_since >= CLOSE_RETRY_US;
		if(!give_up) {
			if(!st->degraded) {
				st->degraded = TRUE;
				st->retry_pause = RETRY_MIN_US;
			} else if((st->retry_pause *= 2) > RETRY_MAX_US) {
				st->retry_pause = RETRY_MAX_US;
			}
			st->retry_at = g_get_monotonic_time() + st->retry_pause;
			g_strlcpy(st->degraded_why, err[0] ? err : store_rc_name(rc), sizeof(st->degraded_why));
		}
		g_mutex_unlock(&st->lock);
		if(!give_up)
			return TRUE;
	}
	/* the store's state first, then the callback: whoever the callback
	 * wakes sees the store as it is after this job */
	g_mutex_lock(&st->lock);
	if(st->degraded && must_keep(j->kind))
		st->degraded = FALSE;          /* the job that waited is through: try the rest */
	if(transient(rc))
		st->failed++;
	if(timed)
		commit_timed(st, took);
	g_mutex_unlock(&st->lock);
	if(j->done)
		j->done(rc, rc == STORE_OK ? NULL : (err[0] ? err : store_rc_name(rc)), j->user);
	return FALSE;
counted:                               /* reads: their callbacks ran above */
	g_mutex_lock(&st->lock);
	if(transient(rc))
		st->failed++;
	if(timed)
		commit_timed(st, g_get_monotonic_time() - started);
	g_mutex_unlock(&st->lock);
	return FALSE;
}

/* While degraded: take every job that is not must-keep out of the queue
 * (under st->lock), to be refused at once by the caller. */
static GQueue take_refusable(store *st) {
	GQueue out = G_QUEUE_INIT;
	GList *l = st->jobs.head;
	while(l) {
		GList *next = l->next;
		store_job *j = l->data;
		if(!must_keep(j->kind)) {
			g_queue_unlink(&st->jobs, l);
			g_queue_push_tail_link(&out, l);
			if(j->kind == JOB_SAMPLE)
				st->samples_queued--;
		}
		l = next;
	}
	return out;
}

static gpointer writer_main(gpointer data) {
	store *st = data;
	for(;;) {
		g_mutex_lock(&st->lock);
		while(g_queue_is_empty(&st->jobs) && !st->closing)
			g_cond_wait(&st->wake, &st->lock);
		if(st->degraded) {
			GQueue refused = take_refusable(st);
			char why[ERRLEN + 40];
			g_snprintf(why, sizeof(why), "the store is unavailable: %s", st->degraded_why);
			if(!g_queue_is_empty(&refused)) {
				g_mutex_unlock(&st->lock);
				store_job *r;
				while((r = g_queue_pop_head(&refused)) != NULL) {
					refuse_job(st, r, STORE_UNAVAILABLE, why);
					job_free(r);
				}
				continue;
			}
			gint64 now = g_get_monotonic_time();
			if(now < st->retry_at && !g_queue_is_empty(&st->jobs)) {
				/* wake for new jobs (to refuse them at once) or the retry */
				g_cond_wait_until(&st->wake, &st->lock, st->retry_at);
				g_mutex_unlock(&st->lock);
				continue;
			}
		}
		store_job *j = g_queue_pop_head(&st->jobs);
		if(j == NULL) {                /* closing and nothing left */
			st->stopped = TRUE;
			g_mutex_unlock(&st->lock);
			return NULL;
		}
		g_mutex_unlock(&st->lock);
		if(j->kind == JOB_SAMPLE) {
			run_samples(st, j);        /* frees the batch */
			continue;
		}
		if(run_job(st, j, st->backend)) {
			g_mutex_lock(&st->lock);
			g_queue_push_head(&st->jobs, j);   /* retried, in order, when the pause is over */
			g_mutex_unlock(&st->lock);
			continue;
		}
		job_free(j);
	}
}

/* The analytics lane's barrier: until the writer has run everything that
 * was queued before now. -1 if the writer is degraded (the job is refused
 * at once rather than wait for the fault to clear) or stopped. */
static int writer_barrier(store *st, char *why, size_t whylen) {
	g_mutex_lock(&st->lock);
	gboolean degraded = st->degraded;
	if(degraded)
		g_snprintf(why, whylen, "the store is unavailable: %s", st->degraded_why);
	g_mutex_unlock(&st->lock);
	if(degraded)
		return -1;
	return lane_sync(st, FALSE);
}

/* The analytics lane's thread runs at a lower CPU priority than the calls:
 * a report that keeps a core busy for seconds must not delay the writer's
 * commits or Janus's media threads when they wake on that core (the
 * scheduler preempts a niced thread at once instead of after its slice).
 * On Linux nice is per thread; elsewhere the lane keeps the process's. */
#define ANALYTICS_NICE 10

void store_background_thread(void) {
#ifdef __linux__
	errno = 0;
	int now = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
	if(errno == 0 && now < ANALYTICS_NICE)
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), ANALYTICS_NICE);
#endif
}

static gpointer analytics_main(gpointer data) {
	store *st = data;
	store_background_thread();
	for(;;) {
		g_mutex_lock(&st->lock);
		while(g_queue_is_empty(&st->ajobs) && !st->aclosing)
			g_cond_wait(&st->awake, &st->lock);
		store_job *j = g_queue_pop_head(&st->ajobs);
		if(j == NULL) {
			st->astopped = TRUE;
			g_mutex_unlock(&st->lock);
			return NULL;
		}
		g_mutex_unlock(&st->lock);
		char why[ERRLEN + 40] = "";
		if(j->kind != JOB_SYNC && writer_barrier(st, why, sizeof(why)) < 0 && why[0])
			refuse_job(st, j, STORE_UNAVAILABLE, why);
		else
			run_job(st, j, st->reader);    /* never retried: not must-keep */
		job_free(j);
	}
}

/* --- the write calls: validate, copy, queue -------------------------------------- */

int store_visit_create(store *st, const store_visit_rec *r,
		store_done_cb cb, void *user) {
	if(st == NULL || r == NULL || !r->visit_id || !r->therapist_code
			|| !r->client_code || !r->modality)
		return -1;
	store_job *j = job_new(JOB_VISIT_CREATE, cb, user);
	j->u.visit.visit_id = jstr(j, r->visit_id);
	j->u.visit.therapist_code = jstr(j, r->therapist_code);
	j->u.visit.client_code = jstr(j, r->client_code);
	j->u.visit.modality = jstr(j, r->modality);
	j->u.visit.created_at_us = r->created_at_us;
	j->u.visit.instance_id = jstr(j, r->instance_id);
	j->u.visit.invite_sha256 = jstr(j, r->invite_sha256);
	return enqueue(st, j);
}

static int queue_change(store *st, job_kind kind, const char *id,
		const char *status, gint64 at_us, store_done_cb cb, void *user) {
	store_job *j = job_new(kind, cb, user);
	j->u.change.id = jstr(j, id);
	j->u.change.status = jstr(j, status);
	j->u.change.at_us = at_us;
	return enqueue(st, j);
}

int store_visit_state(store *st, const char *visit_id, const char *state,
		gint64 at_us, store_done_cb cb, void *user) {
	if(st == NULL || visit_id == NULL || state == NULL)
		return -1;
	return queue_change(st, JOB_VISIT_STATE, visit_id, state, at_us, cb, user);
}

static const char *const end_reasons[] = {
	"therapist", "idle", "max_duration", "shutdown", "interrupted", NULL };

static gboolean one_of(const char *s, const char *const *names);

int store_visit_ended(store *st, const char *visit_id, const char *end_reason,
		gint64 at_us, store_done_cb cb, void *user) {
	if(st == NULL || visit_id == NULL || end_reason == NULL || !one_of(end_reason, end_reasons))
		return -1;
	return queue_change(st, JOB_VISIT_ENDED, visit_id, end_reason, at_us, cb, user);
}

int store_repair_interrupted(store *st, const char *instance_id, gint64 now_us,
		store_count_cb cb, void *user) {
	if(st == NULL || instance_id == NULL)
		return -1;
	store_job *j = job_new(JOB_REPAIR, NULL, user);
	j->count = cb;
	j->u.erase.instance_id = jstr(j, instance_id);
	j->u.erase.at_us = now_us;
	return enqueue(st, j);
}

int store_instance_seen(store *st, const char *instance_id, const char *servers_json,
		gint64 started_at_us, gint64 seen_at_us, store_done_cb cb, void *user) {
	if(st == NULL || instance_id == NULL || instance_id[0] == '\0' || servers_json == NULL)
		return -1;
	json_t *a = json_loads(servers_json, 0, NULL);
	gboolean ok = json_is_array(a);
	for(size_t i = 0; ok && i < json_array_size(a); i++)
		ok = json_is_string(json_array_get(a, i));
	json_decref(a);
	if(!ok)
		return -1;
	store_job *j = job_new(JOB_INSTANCE_SEEN, cb, user);
	j->u.instance.instance_id = jstr(j, instance_id);
	j->u.instance.servers_json = jstr(j, servers_json);
	j->u.instance.started_at_us = started_at_us;
	j->u.instance.seen_at_us = seen_at_us;
	return enqueue(st, j);
}

int store_visit_locate(store *st, const char *visit_id, const char *invite_sha256,
		store_locate_cb cb, void *user) {
	if(st == NULL || (visit_id == NULL && invite_sha256 == NULL))
		return -1;
	store_job *j = job_new(JOB_VISIT_LOCATE, NULL, user);
	j->locate = cb;
	j->u.locate.visit_id = jstr(j, visit_id);
	j->u.locate.invite_sha256 = jstr(j, invite_sha256);
	return enqueue(st, j);
}

int store_participant_join(store *st, const char *visit_id, const char *role,
		const char *code, gboolean research_consent, const char *language,
		gint64 at_us, store_done_cb cb, void *user) {
	if(st == NULL || visit_id == NULL || role == NULL)
		return -1;
	store_job *j = job_new(JOB_PARTICIPANT, cb, user);
	j->u.join.visit_id = jstr(j, visit_id);
	j->u.join.role = jstr(j, role);
	j->u.join.code = jstr(j, code);
	j->u.join.language = jstr(j, language);
	j->u.join.consent = research_consent ? TRUE : FALSE;
	j->u.join.at_us = at_us;
	return enqueue(st, j);
}

int store_pulse_create(store *st, const store_pulse_rec *r,
		store_done_cb cb, void *user) {
	if(st == NULL || r == NULL || !r->pulse_id || !r->visit_id || !r->role
			|| !r->kind || !r->instrument_id || !r->instrument_version
			|| !r->language || !r->trigger)
		return -1;
	store_job *j = job_new(JOB_PULSE_CREATE, cb, user);
	store_pulse_rec *p = &j->u.pulse;
	p->pulse_id = jstr(j, r->pulse_id);
	p->visit_id = jstr(j, r->visit_id);
	p->role = jstr(j, r->role);
	p->kind = jstr(j, r->kind);
	p->instrument_id = jstr(j, r->instrument_id);
	p->instrument_version = jstr(j, r->instrument_version);
	p->language = jstr(j, r->language);
	p->trigger = jstr(j, r->trigger);
	p->delivered_via = jstr(j, r->delivered_via);
	p->created_at_us = r->created_at_us;
	p->expires_at_us = r->expires_at_us;
	return enqueue(st, j);
}

int store_pulse_status(store *st, const char *pulse_id, const char *status,
		gint64 at_us, store_done_cb cb, void *user) {
	if(st == NULL || pulse_id == NULL || status == NULL)
		return -1;
	if(strcmp(status, "dismissed") == 0)
		return store_dismiss(st, pulse_id, at_us, cb, user);
	if(strcmp(status, "delivered") != 0 && strcmp(status, "expired") != 0)
		return -1;
	return queue_change(st, JOB_PULSE_STATUS, pulse_id, status, at_us, cb, user);
}

int store_pulse_delivered(store *st, const char *pulse_id, const char *via,
		gint64 at_us, store_done_cb cb, void *user) {
	if(st == NULL || pulse_id == NULL || via == NULL ||
			(strcmp(via, "datachannel") != 0 && strcmp(via, "event") != 0))
		return -1;
	char status[32];
	g_snprintf(status, sizeof(status), "delivered:%s", via);
	return queue_change(st, JOB_PULSE_STATUS, pulse_id, status, at_us, cb, user);
}

int store_answer(store *st, const store_answer_rec *r,
		store_done_cb cb, void *user) {
	if(st == NULL || r == NULL || r->pulse_id == NULL
			|| r->n_items < 0 || (r->n_items > 0 && r->items == NULL)
			|| r->n_scores < 0 || (r->n_scores > 0 && r->scores == NULL))
		return -1;
	for(int i = 0; i < r->n_items; i++)
		if(r->items[i].item_id == NULL || !isfinite(r->items[i].value))
			return -1;
	for(int i = 0; i < r->n_scores; i++)
		if(r->scores[i].name == NULL || !isfinite(r->scores[i].value))
			return -1;
	store_job *j = job_new(JOB_ANSWER, cb, user);
	store_answer_rec *a = &j->u.answer;
	*a = *r;
	a->pulse_id = jstr(j, r->pulse_id);
	a->final = r->final ? TRUE : FALSE;
	a->research_consent = r->research_consent ? TRUE : FALSE;
	store_item_value *items = g_new0(store_item_value, r->n_items > 0 ? r->n_items : 1);
	for(int i = 0; i < r->n_items; i++) {
		items[i].item_id = jstr(j, r->items[i].item_id);
		items[i].value = r->items[i].value;
	}
	a->items = items;
	store_score *scores = g_new0(store_score, r->n_scores > 0 ? r->n_scores : 1);
	for(int i = 0; i < a->n_scores; i++) {
		scores[i].name = jstr(j, r->scores[i].name);
		scores[i].value = r->scores[i].value;
	}
	a->scores = scores;
	return enqueue(st, j);
}

int store_dismiss(store *st, const char *pulse_id, gint64 at_us,
		store_done_cb cb, void *user) {
	if(st == NULL || pulse_id == NULL)
		return -1;
	return queue_change(st, JOB_DISMISS, pulse_id, NULL, at_us, cb, user);
}

int store_alert(store *st, const store_alert_rec *r,
		store_done_cb cb, void *user) {
	if(st == NULL || r == NULL || !r->visit_id || !r->rule || !r->score_name
			|| !isfinite(r->score) || !isfinite(r->threshold))
		return -1;
	store_job *j = job_new(JOB_ALERT, cb, user);
	store_alert_rec *a = &j->u.alert;
	*a = *r;
	a->visit_id = jstr(j, r->visit_id);
	a->pulse_id = jstr(j, r->pulse_id);
	a->rule = jstr(j, r->rule);
	a->score_name = jstr(j, r->score_name);
	a->quality_json = jstr(j, r->quality_json);
	return enqueue(st, j);
}

int store_event(store *st, const char *visit_id, const char *kind,
		const char *detail_json, gint64 at_us, store_done_cb cb, void *user) {
	if(st == NULL || kind == NULL)
		return -1;
	store_job *j = job_new(JOB_EVENT, cb, user);
	j->u.event.visit_id = jstr(j, visit_id);
	j->u.event.kind = jstr(j, kind);
	j->u.event.detail_json = jstr(j, detail_json);
	j->u.event.at_us = at_us;
	return enqueue(st, j);
}

int store_quality_sample(store *st, const char *visit_id, const char *leg,
		const char *medium, gint64 at_us, const char *metrics_json) {
	if(st == NULL || !visit_id || !leg || !medium || !metrics_json)
		return -1;
	store_job *j = job_new(JOB_SAMPLE, NULL, NULL);
	j->u.sample.visit_id = jstr(j, visit_id);
	j->u.sample.leg = jstr(j, leg);
	j->u.sample.medium = jstr(j, medium);
	j->u.sample.metrics_json = jstr(j, metrics_json);
	j->u.sample.at_us = at_us;
	return enqueue(st, j);
}

/* TRUE if text is one JSON object (the whole text, no duplicate keys). */
static gboolean is_json_object(const char *text) {
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	gboolean ok = j != NULL && json_is_object(j);
	json_decref(j);
	return ok;
}

static gboolean one_of(const char *s, const char *const *names) {
	for(; *names; names++)
		if(strcmp(s, *names) == 0)
			return TRUE;
	return FALSE;
}

/* The names the incidents table's CHECK constraints accept (migration 2). */
static const char *const incident_legs[] = {
	"client_up", "client_down", "therapist_up", "therapist_down", NULL };
static const char *const incident_media[] = { "audio", "video", "any", NULL };
static const char *const incident_kinds[] = {
	"freeze", "loss_burst", "high_rtt", "stall", "reconnect", "slow_link", NULL };

int store_pulse_quality(store *st, const char *pulse_id, const char *quality_json,
		store_done_cb cb, void *user) {
	if(st == NULL || pulse_id == NULL || quality_json == NULL
			|| !is_json_object(quality_json))
		return -1;
	store_job *j = job_new(JOB_PULSE_QUALITY, cb, user);
	j->u.quality.pulse_id = jstr(j, pulse_id);
	j->u.quality.quality_json = jstr(j, quality_json);
	return enqueue(st, j);
}

int store_incident(store *st, const store_incident_rec *r,
		store_done_cb cb, void *user) {
	if(st == NULL || r == NULL || !r->visit_id || !r->leg || !r->medium || !r->kind
			|| !one_of(r->leg, incident_legs) || !one_of(r->medium, incident_media)
			|| !one_of(r->kind, incident_kinds)
			|| (r->ended_at_us != 0 && r->ended_at_us < r->started_at_us)
			|| (r->detail_json != NULL && !is_json_object(r->detail_json)))
		return -1;
	store_job *j = job_new(JOB_INCIDENT, cb, user);
	store_incident_rec *i = &j->u.incident;
	*i = *r;
	i->visit_id = jstr(j, r->visit_id);
	i->leg = jstr(j, r->leg);
	i->medium = jstr(j, r->medium);
	i->kind = jstr(j, r->kind);
	i->detail_json = jstr(j, r->detail_json);
	return enqueue(st, j);
}

int store_visit_quality(store *st, const char *visit_id, store_text_cb cb,
		void *user) {
	if(st == NULL || visit_id == NULL)
		return -1;
	store_job *j = job_new(JOB_VISIT_QUALITY, NULL, user);
	j->text = cb;
	j->u.visit_id = jstr(j, visit_id);
	return enqueue(st, j);
}

int store_client_scores(store *st, const char *client_code,
		const char *instrument_id, const char *score_name,
		const char *exclude_visit_id, int limit, store_values_cb cb, void *user) {
	if(st == NULL || !client_code || !instrument_id || !score_name)
		return -1;
	store_job *j = job_new(JOB_CLIENT_SCORES, NULL, user);
	j->values = cb;
	j->u.scores.client_code = jstr(j, client_code);
	j->u.scores.instrument_id = jstr(j, instrument_id);
	j->u.scores.score_name = jstr(j, score_name);
	j->u.scores.exclude = jstr(j, exclude_visit_id);
	j->u.scores.limit = limit;
	return enqueue(st, j);
}

/* --- reports, erasure, retention ---------------------------------------------------- */

int store_visit_summarize(store *st, const char *visit_id,
		store_done_cb cb, void *user) {
	if(st == NULL || visit_id == NULL)
		return -1;
	store_job *j = job_new(JOB_VISIT_SUMMARIZE, cb, user);
	j->u.visit_id = jstr(j, visit_id);
	return enqueue(st, j);
}

int store_forget_client(store *st, const char *client_code, gint64 at_us,
		store_count_cb cb, void *user) {
	if(st == NULL || client_code == NULL || client_code[0] == '\0')
		return -1;
	store_job *j = job_new(JOB_FORGET, NULL, user);
	j->count = cb;
	j->u.erase.client_code = jstr(j, client_code);
	j->u.erase.at_us = at_us;
	return enqueue(st, j);
}

int store_retention(store *st, int days, gint64 now_us,
		store_count_cb cb, void *user) {
	if(st == NULL || days < 1)
		return -1;
	store_job *j = job_new(JOB_RETENTION, NULL, user);
	j->count = cb;
	j->u.erase.days = days;
	j->u.erase.at_us = now_us;
	return enqueue(st, j);
}

int store_report_rows(store *st, store_report_what what,
		const store_report_filter *f, store_row_cb row, store_done_cb done,
		void *user) {
	if(st == NULL || f == NULL || row == NULL)
		return -1;
	switch(what) {
		case STORE_READ_VISITS:
		case STORE_READ_END_SCORES:
		case STORE_READ_ANSWERS:
		case STORE_READ_SAMPLES:
			break;
		case STORE_READ_VISIT:
			if(f->visit_id == NULL)
				return -1;
			break;
		default:
			return -1;
	}
	if(f->modality && strcmp(f->modality, "video") != 0 && strcmp(f->modality, "in_person") != 0)
		return -1;
	store_job *j = job_new(JOB_REPORT_ROWS, done, user);
	j->row = row;
	j->u.report.what = what;
	store_report_filter *c = &j->u.report.filter;
	*c = *f;
	c->visit_id = jstr(j, f->visit_id);
	c->therapist_code = jstr(j, f->therapist_code);
	c->client_code = jstr(j, f->client_code);
	c->modality = jstr(j, f->modality);
	c->instrument_id = jstr(j, f->instrument_id);
	return enqueue(st, j);
}
