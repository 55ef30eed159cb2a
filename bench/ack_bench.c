/*
 * ack_bench.c — do reports delay answers? (issue 10: analytics off the call path)
 *
 * An answer is acknowledged to the participant from its store callback,
 * after COMMIT. This measures that latency (store_answer() called ->
 * callback) for answers arriving at a steady rate, in two conditions
 * measured in the same run, alternating so that the machine's noise hits
 * both alike:
 *
 *   quiet     nothing else runs
 *   compare   a `compare` report over the whole store runs in a loop on
 *             another thread (report_build(), the plugin's own code; it
 *             reads on the store's analytics lane)
 *
 * and prints p50 / p99 / max of each and the ratio of the p99s. The target
 * is p99(compare) <= 1.2 x p99(quiet).
 *
 * The store is generated first through the store API (the same calls the
 * plugin makes, so any backend gets the same data): VISITS visits (10 per
 * therapist... 8 per client, alternating video and in person, 90 % with
 * research consent, an in-session and both end pulses answered, the end
 * pulse's quality context), and SAMPLES quality samples spread over the
 * video visits. The generation does not wait for the disk (SQLite
 * synchronous off, PostgreSQL synchronous_commit off: it is not what is
 * measured); the measurement opens the store as the plugin does.
 *
 *   bench/ack_bench --db PATH      [--visits N] [--samples M] [--answers K] [--rate R] [--rounds X]
 *   bench/ack_bench --db-url URL   ... (an empty database: it is filled)
 *   bench/ack_bench --again ...    measure a store an earlier run filled (it
 *                                  then also holds that run's answer visits)
 *
 * Defaults: 10000 visits, 1000000 samples, 4 rounds of 100 answers per
 * condition at 25 answers/s. Nothing is asserted; see bench/README.md.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_sample.h"
#include "report.h"
#include "store.h"
#include "store_sqlite.h"

#define T0 1700000000000000LL
#define DAY (86400LL * 1000000LL)

typedef struct options {
	const char *db, *db_url;
	int visits, samples, answers, rounds, rate;
	gboolean again;                    /* --again: measure a store a run filled */
} options;

static void die(const char *what, const char *why) {
	fprintf(stderr, "ack_bench: %s: %s\n", what, why ? why : "?");
	exit(1);
}

static void gen_done(store_rc rc, const char *error, void *user) {
	if(rc != STORE_OK)
		die((const char *)user, error);
}

static store *open_store(const options *o, gboolean generating) {
	char err[512];
	store *st;
	if(o->db) {
		/* the data, not what is measured: no wait for the disk */
		st = store_sqlite_open_ex(o->db, generating ? STORE_SQLITE_OPEN_NOT_DURABLE : 0, err, sizeof(err));
	} else {
		/* the data, not what is measured: no wait for the WAL flush */
		char *url;
		if(!generating)
			url = g_strdup(o->db_url);
		else if(g_str_has_prefix(o->db_url, "postgres"))      /* a URI */
			url = g_strdup_printf("%s%coptions=-c%%20synchronous_commit%%3Doff", o->db_url,
				strchr(o->db_url, '?') ? '&' : '?');
		else                                                    /* keyword=value */
			url = g_strdup_printf("%s options='-c synchronous_commit=off'", o->db_url);
		st = store_open_pg(url, err, sizeof(err));
		g_free(url);
	}
	if(st == NULL)
		die("open", err);
	return st;
}

/* --- the data ---------------------------------------------------------------------- */
static void generate(const options *o) {
	store *st = open_store(o, TRUE);
	GRand *rng = g_rand_new_with_seed(10);
	int n_video = (o->visits + 1) / 2;
	int per_video = o->visits ? o->samples / n_video : 0, extra = o->visits ? o->samples % n_video : 0;
	static const char *const legs[4] = { "client_up", "therapist_up", "client_up", "therapist_up" };
	static const char *const media[4] = { "audio", "audio", "video", "video" };
	static const char *const items[4] = { "goals", "tasks", "bond", "overall" };
	static const char *const kinds[3] = { "in_session", "end", "end" };
	static const char *const roles[3] = { "client", "client", "therapist" };
	static const char *const ins[3] = { "ap-pulse", "ap-end", "ap-therapist-end" };
	static const char *const trig[3] = { "schedule", "end", "end" };
	gint64 t_start = g_get_monotonic_time();
	int queued_samples = 0;
	for(int v = 0; v < o->visits; v++) {
		int client = v / 8, k = v % 8, therapist = client / 10;
		gboolean video = ((k + client) % 2) == 0;
		gboolean consent = client % 10 != 9;
		char vid[32], cl[16], th[16];
		g_snprintf(vid, sizeof(vid), "v%06d", v);
		g_snprintf(cl, sizeof(cl), "C-%05d", client);
		g_snprintf(th, sizeof(th), "T-%03d", therapist);
		gint64 t = T0 + k * 7 * DAY + client * 1000000LL;
		store_visit_rec vr = { vid, th, cl, video ? "video" : "in_person", t, "bench", NULL };
		store_visit_create(st, &vr, gen_done, (void *)"visit");
		store_visit_state(st, vid, "live", t + 60000000, gen_done, (void *)"live");
		store_participant_join(st, vid, "therapist", th, FALSE, "en", t, gen_done, (void *)"join");
		store_participant_join(st, vid, "client", cl, consent, "en", t + 1, gen_done, (void *)"join");
		double freeze = video ? -8 * log(1 - g_rand_double(rng)) : 0;
		double z = sqrt(-2 * log(1 - g_rand_double(rng))) * cos(2 * G_PI * g_rand_double(rng));
		double total = round(CLAMP(29 + 0.3 * k - (video ? 1.5 + 0.1 * (freeze - 8) : 0) + 4 * z, 0, 40) * 10) / 10;
		double ttotal = round(CLAMP(total + 2 * g_rand_double(rng) - 1, 0, 40) * 10) / 10;
		if(video) {
			int n = per_video + (v / 2 < extra ? 1 : 0);
			for(int i = 0; i < n; i++) {
				int leg = i % 4;
				char m[256];
				bench_sample_json(m, sizeof(m), i, leg);
				/* the queue drops samples beyond STORE_SAMPLE_QUEUE_MAX: wait for it */
				while(store_quality_sample(st, vid, legs[leg], media[leg],
						t + 60000000LL + 5000000LL * (i / 4 + 1), m) < 0) {
					if(store_sync(st) < 0)
						die("samples", "the store stopped");
				}
				if(++queued_samples % 5000 == 0)
					store_sync(st);
			}
		}
		for(int p = 0; p < 3; p++) {
			char pid[40];
			g_snprintf(pid, sizeof(pid), "%s-%d", vid, p);
			gint64 pt = p == 0 ? t + 1500000000LL : t + 3000000000LL + p;
			store_pulse_rec pr = { pid, vid, roles[p], kinds[p], ins[p], "1.0", "en", trig[p],
				"datachannel", pt, pt + 120000000 };
			store_pulse_create(st, &pr, gen_done, (void *)"pulse");
			if(p == 1 && video) {
				char *q = g_strdup_printf("{\"window_s\":0,\"measured_s\":3000,\"legs\":{},\"paths\":{"
					"\"client_to_therapist\":{\"mos\":%.2f,\"loss_pct\":%.2f},\"therapist_to_client\":{\"mos\":%.2f,"
					"\"loss_pct\":%.2f}},\"freezes\":%d,\"freeze_s\":%.1f,\"incidents\":%d}",
					4.3 - freeze / 40, freeze / 10, 4.2 - freeze / 40, freeze / 12, (int)(freeze / 2),
					freeze, (int)(freeze / 4));
				store_pulse_quality(st, pid, q, gen_done, (void *)"quality");
				g_free(q);
			}
			store_pulse_delivered(st, pid, "datachannel", pt + 1000, gen_done, (void *)"delivered");
			double tot = p == 0 ? 14 : p == 1 ? total : ttotal;
			int ni = p == 0 ? 2 : 4;
			store_item_value iv[4];
			store_score sc[5];
			for(int i = 0; i < ni; i++) {
				iv[i].item_id = p == 0 ? (i ? "focus" : "understood") : items[i];
				iv[i].value = tot / ni;
			}
			int ns = 0;
			if(p > 0)
				for(int i = 0; i < ni; i++)
					sc[ns++] = (store_score){ items[i], tot / ni };
			sc[ns++] = (store_score){ "total", tot };
			store_answer_rec ar = { pid, TRUE, pt + 30000000, 29000, consent, ni, iv, ns, sc };
			store_answer(st, &ar, gen_done, (void *)"answer");
		}
		store_visit_ended(st, vid, "therapist", t + 3000000000LL, gen_done, (void *)"ended");
		store_visit_state(st, vid, "closed", t + 3180000000LL, gen_done, (void *)"closed");
		store_visit_summarize(st, vid, gen_done, (void *)"summarize");
		if(v % 250 == 249) {
			store_sync(st);
			fprintf(stderr, "\rack_bench: generating: %d of %d visits", v + 1, o->visits);
		}
	}
	store_sync(st);
	fprintf(stderr, "\rack_bench: generated %d visits and %d samples in %.1f s\n", o->visits,
		o->samples, (g_get_monotonic_time() - t_start) / 1e6);
	guint64 dropped = store_dropped_samples(st);
	if(dropped)
		fprintf(stderr, "ack_bench: %" G_GUINT64_FORMAT " samples were dropped while generating\n", dropped);
	g_rand_free(rng);
	store_close(st);
}

/* --- the measurement ----------------------------------------------------------------- */
typedef struct ack {
	GMutex m;
	GCond c;
	gboolean done;
	store_rc rc;
	gint64 at;
} ack;

static void acked(store_rc rc, const char *error, void *user) {
	ack *a = user;
	g_mutex_lock(&a->m);
	a->rc = rc;
	a->at = g_get_monotonic_time();
	a->done = TRUE;
	g_cond_signal(&a->c);
	g_mutex_unlock(&a->m);
}

typedef struct reporter {
	store *st;
	volatile gint run;
	int reports;
	double ms_total;
} reporter;

static gpointer report_loop(gpointer data) {
	reporter *r = data;
	store_background_thread();             /* as the plugin's reports thread does */
	report_env env;
	report_env_init(&env);
	proto_report_filters f;
	proto_error err;
	proto_report_filters_parse(NULL, &f, &err);
	while(g_atomic_int_get(&r->run)) {
		gint64 t0 = g_get_monotonic_time();
		json_t *j = report_build(r->st, PROTO_REPORT_COMPARE, &f, &env, 0, &err);
		if(j == NULL)
			die("compare", err.reason);
		json_decref(j);
		r->ms_total += (g_get_monotonic_time() - t0) / 1000.0;
		r->reports++;
	}
	return NULL;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(GArray *v, double p) {
	if(v->len == 0)
		return NAN;
	qsort(v->data, v->len, sizeof(double), cmp_double);
	size_t i = (size_t)ceil(p / 100.0 * v->len);
	return g_array_index(v, double, i == 0 ? 0 : i - 1);
}

/* K answers at `rate` per second, each to a pulse of a fresh visit
 * (created and delivered first, not timed); latencies in ms into out. */
static void answers(store *st, int round, int k, int rate, GArray *out) {
	gint64 period = G_USEC_PER_SEC / rate;
	for(int i = 0; i < k; i++) {
		char vid[40], pid[48];
		g_snprintf(vid, sizeof(vid), "ack-%d-%d-%d", round, i, g_random_int_range(0, 1 << 30));
		g_snprintf(pid, sizeof(pid), "%s-p", vid);
		gint64 now = g_get_real_time();
		store_visit_rec vr = { vid, "T-900", "C-90000", "video", now, "bench", NULL };
		store_visit_create(st, &vr, gen_done, (void *)"visit");
		store_pulse_rec pr = { pid, vid, "client", "in_session", "ap-pulse", "1.0", "en", "schedule",
			"datachannel", now, now + 120000000 };
		store_pulse_create(st, &pr, gen_done, (void *)"pulse");
		store_pulse_delivered(st, pid, "datachannel", now, gen_done, (void *)"delivered");
		store_sync(st);
		gint64 due = g_get_monotonic_time() + period;
		ack a;
		memset(&a, 0, sizeof(a));
		g_mutex_init(&a.m);
		g_cond_init(&a.c);
		store_item_value iv[2] = { { "understood", 7 }, { "focus", 8 } };
		store_score sc[1] = { { "total", 15 } };
		store_answer_rec ar = { pid, TRUE, now + 1000, 1000, TRUE, 2, iv, 1, sc };
		gint64 t0 = g_get_monotonic_time();
		if(store_answer(st, &ar, acked, &a) < 0)
			die("answer", "refused at once");
		g_mutex_lock(&a.m);
		while(!a.done)
			g_cond_wait(&a.c, &a.m);
		g_mutex_unlock(&a.m);
		if(a.rc != STORE_OK)
			die("answer", store_rc_name(a.rc));
		double ms = (a.at - t0) / 1000.0;
		g_array_append_val(out, ms);
		g_mutex_clear(&a.m);
		g_cond_clear(&a.c);
		gint64 left = due - g_get_monotonic_time();
		if(left > 0)
			g_usleep(left);
	}
}

static void measure(const options *o) {
	store *st = open_store(o, FALSE);
	GArray *quiet = g_array_new(FALSE, FALSE, sizeof(double));
	GArray *busy = g_array_new(FALSE, FALSE, sizeof(double));
	reporter rep = { st, 0, 0, 0 };
	for(int r = 0; r < o->rounds; r++) {
		/* ABBA order: each condition goes first as often as second */
		for(int half = 0; half < 2; half++) {
			gboolean with_reports = (half == 0) == (r % 2 == 1);
			GThread *t = NULL;
			if(with_reports) {
				g_atomic_int_set(&rep.run, 1);
				t = g_thread_new("compare loop", report_loop, &rep);
				g_usleep(200000);               /* a compare under way */
			}
			answers(st, r * 2 + half, o->answers, o->rate, with_reports ? busy : quiet);
			if(t) {
				g_atomic_int_set(&rep.run, 0);
				g_thread_join(t);
			}
			fprintf(stderr, "\rack_bench: round %d of %d", r + 1, o->rounds);
		}
	}
	fprintf(stderr, "\n");
	double q50 = pct(quiet, 50), q99 = pct(quiet, 99), qmax = pct(quiet, 100);
	double b50 = pct(busy, 50), b99 = pct(busy, 99), bmax = pct(busy, 100);
	printf("backend %s, %d visits, %d samples; %u answers per condition at %d/s\n",
		store_backend_name(st), o->visits, o->samples, quiet->len, o->rate);
	printf("  %-34s p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms\n", "ack, no report running", q50, q99, qmax);
	printf("  %-34s p50 %7.2f ms   p99 %7.2f ms   max %7.2f ms\n", "ack, compare in a loop", b50, b99, bmax);
	printf("  %-34s %d compares, %.0f ms each on average\n", "", rep.reports,
		rep.reports ? rep.ms_total / rep.reports : 0);
	printf("  ratio p99 (compare / none)          %.2f   (target <= 1.2)\n", b99 / q99);
	g_array_free(quiet, TRUE);
	g_array_free(busy, TRUE);
	store_close(st);
}

int main(int argc, char **argv) {
	options o = { NULL, NULL, 10000, 1000000, 100, 4, 25, FALSE };
	for(int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if(!strcmp(a, "--again")) {
			o.again = TRUE;
			continue;
		}
		if(v == NULL)
			die("usage", "ack_bench --db PATH | --db-url URL [--visits N] [--samples M] [--answers K] [--rate R] [--rounds X] [--again]");
		if(!strcmp(a, "--db")) o.db = v;
		else if(!strcmp(a, "--db-url")) o.db_url = v;
		else if(!strcmp(a, "--visits")) o.visits = atoi(v);
		else if(!strcmp(a, "--samples")) o.samples = atoi(v);
		else if(!strcmp(a, "--answers")) o.answers = atoi(v);
		else if(!strcmp(a, "--rate")) o.rate = atoi(v);
		else if(!strcmp(a, "--rounds")) o.rounds = atoi(v);
		else die("usage", a);
		i++;
	}
	if((o.db == NULL) == (o.db_url == NULL) || o.visits < 8 || o.samples < 0 || o.answers < 1
			|| o.rate < 1 || o.rounds < 1)
		die("usage", "ack_bench --db PATH | --db-url URL [--visits N>=8] [--samples M] [--answers K] [--rate R] [--rounds X] [--again]");
	if(o.db && !o.again && g_file_test(o.db, G_FILE_TEST_EXISTS))
		die(o.db, "exists (the benchmark makes its own database; --again measures one it made)");
	if(!o.again)
		generate(&o);
	measure(&o);
	return 0;
}
