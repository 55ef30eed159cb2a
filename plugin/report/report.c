/*
 * report.c — see report.h: the four reports and the store reads behind
 * them (the exports are in report_export.c); docs/reports.md gives the
 * shape of every report and docs/statistics.md the statistics.
 *
 * The reports never skip missing data silently: every statistic is given
 * with the n it was computed from, and a statistic that cannot be computed
 * (too few values, no spread) is null next to its n, never a made-up
 * number (stats.h refuses with NaN, written as null).
 *
 * Which visits count: a visit contributes to a score statistic when its
 * client answered the end pulse of the analysed instrument (a final answer
 * with a `total`); each visit counts once. Quality correlations use video
 * visits only (in-person visits have no connection to measure).
 */
#include "report.h"
#include "report_json.h"
#include "report_mixed.h"
#include "stats.h"
#include "report_class.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* --- small helpers --------------------------------------------------------------------- */

void report_env_init(report_env *env) {
	memset(env, 0, sizeof(*env));
	env->ceiling_share = REPORT_CEILING_SHARE;
	env->ceiling_min_n = REPORT_CEILING_MIN_N;
	env->formation_points = REPORT_FORMATION_POINTS;
	env->ni_margin = REPORT_NI_MARGIN;
}

const char *report_iso_time(gint64 us, char *buf, size_t len) {
	time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
	int frac = (int)(us - (gint64)secs * 1000000);
	struct tm tm;
	if(gmtime_r(&secs, &tm) == NULL) {
		g_strlcpy(buf, "", len);
		return buf;
	}
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	g_snprintf(buf, len, "%s.%06dZ", base, frac);
	return buf;
}

void report_store_filter(proto_report_kind kind, const proto_report_filters *f,
		store_report_filter *out) {
	memset(out, 0, sizeof(*out));
	out->visit_id = f->visit_id;
	out->therapist_code = f->therapist;
	out->client_code = f->client;
	out->modality = f->modality;
	out->instrument_id = f->instrument;
	out->from_us = f->from_us;
	out->to_us = f->to_us;
	/* compare is the research analysis: consented visits unless told otherwise */
	out->research_only = kind == PROTO_REPORT_COMPARE ? f->research != 0 : f->research == 1;
	out->limit = kind == PROTO_REPORT_VISITS ? f->limit : 0;
}

/* The filters as given, echoed into a report (times also as ISO 8601). */
static json_t *filters_json(const proto_report_filters *f, gboolean research) {
	json_t *o = json_object();
	const char *keys[] = { "visit_id", "therapist", "client", "modality", "instrument" };
	const char *vals[] = { f->visit_id, f->therapist, f->client, f->modality, f->instrument };
	for(size_t i = 0; i < G_N_ELEMENTS(keys); i++)
		if(vals[i])
			json_object_set_new(o, keys[i], json_string(vals[i]));
	char buf[40];
	if(f->from_us)
		json_object_set_new(o, "from", json_string(report_iso_time(f->from_us, buf, sizeof(buf))));
	if(f->to_us)
		json_object_set_new(o, "to", json_string(report_iso_time(f->to_us, buf, sizeof(buf))));
	if(f->limit)
		json_object_set_new(o, "limit", json_integer(f->limit));
	if(f->margin > 0)
		json_object_set_new(o, "margin", json_real(f->margin));
	json_object_set_new(o, "research", json_boolean(research));
	return o;
}

static json_t *report_head(const char *kind, const proto_report_filters *f, gboolean research) {
	return json_pack("{s:s, s:s, s:o}", "alliance", "report", "kind", kind,
		"filters", filters_json(f, research));
}

/* n, mean, SD, SE, min, median, max and the 95 % t interval of the mean. */
static json_t *describe_json(const double *x, int n) {
	stats_desc d;
	stats_ci ci;
	if(n < 1 || stats_describe(x, n, &d) < 0) {
		d.mean = d.sd = d.se = d.min = d.max = d.median = NAN;
	}
	if(n < 2 || stats_mean_ci(x, n, 0.95, &ci) < 0)
		ci.lo = ci.hi = NAN;
	return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "n", n,
		"mean", report_num(d.mean), "sd", report_num(d.sd), "se", report_num(d.se), "min", report_num(d.min),
		"median", report_num(d.median), "max", report_num(d.max), "ci_lo", report_num(ci.lo), "ci_hi", report_num(ci.hi));
}

static json_t *corr_json(const double *x, const double *y, int n, gboolean spearman) {
	stats_corr c;
	int rc = n >= 4 ? (spearman ? stats_spearman(x, y, n, &c) : stats_pearson(x, y, n, &c)) : -1;
	if(rc < 0)
		c.r = c.lo = c.hi = c.p = c.se = NAN;
	return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "n", n, spearman ? "rho" : "r", report_num(c.r),
		"lo", report_num(c.lo), "hi", report_num(c.hi), "p", report_num(c.p), "se", report_num(c.se));
}

double report_slope(const double *x, const double *y, int n) {
	if(n < 2)
		return NAN;
	double mx = 0, my = 0;
	for(int i = 0; i < n; i++) {
		mx += x[i];
		my += y[i];
	}
	mx /= n;
	my /= n;
	double sxy = 0, sxx = 0;
	for(int i = 0; i < n; i++) {
		sxy += (x[i] - mx) * (y[i] - my);
		sxx += (x[i] - mx) * (x[i] - mx);
	}
	return sxx > 0 ? sxy / sxx : NAN;
}

/* A pooled within-client slope: each client's visit numbers and scores
 * centred on that client's means, then one least-squares slope, so that
 * differences between clients do not pass for change over visits. */
static double within_slope(const GPtrArray *client, const GArray *x, const GArray *y) {
	GHashTable *sums = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
	int n = (int)x->len;
	for(int i = 0; i < n; i++) {
		double *s = g_hash_table_lookup(sums, client->pdata[i]);
		if(s == NULL) {
			s = g_new0(double, 3);
			g_hash_table_insert(sums, client->pdata[i], s);
		}
		s[0] += g_array_index(x, double, i);
		s[1] += g_array_index(y, double, i);
		s[2] += 1;
	}
	double sxy = 0, sxx = 0;
	for(int i = 0; i < n; i++) {
		double *s = g_hash_table_lookup(sums, client->pdata[i]);
		double dx = g_array_index(x, double, i) - s[0] / s[2];
		double dy = g_array_index(y, double, i) - s[1] / s[2];
		sxy += dx * dy;
		sxx += dx * dx;
	}
	g_hash_table_destroy(sums);
	return sxx > 0 ? sxy / sxx : NAN;
}

/* The instrument to analyse: the filter's, else the most frequent client
 * end instrument among rows with a client total (ties: first by name). */
static const char *choose_instrument(const json_t *rows, const proto_report_filters *f) {
	if(f->instrument)
		return f->instrument;
	GHashTable *count = g_hash_table_new(g_str_hash, g_str_equal);
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		const char *ins = report_sfield(r, "client_instrument");
		if(ins && isfinite(report_field(r, "client_total")))
			g_hash_table_insert(count, (gpointer)ins,
				GINT_TO_POINTER(GPOINTER_TO_INT(g_hash_table_lookup(count, ins)) + 1));
	}
	const char *best = NULL;
	int best_n = 0;
	GHashTableIter it;
	gpointer k, v;
	g_hash_table_iter_init(&it, count);
	while(g_hash_table_iter_next(&it, &k, &v)) {
		int n = GPOINTER_TO_INT(v);
		if(n > best_n || (n == best_n && best && strcmp(k, best) < 0)) {
			best = k;
			best_n = n;
		}
	}
	g_hash_table_destroy(count);
	return best;
}

/* The client total of a row when it is an answer of instrument ins_id. */
static double total_of(const json_t *row, const char *ins_id) {
	const char *ins = report_sfield(row, "client_instrument");
	if(ins_id == NULL || ins == NULL || strcmp(ins, ins_id) != 0)
		return NAN;
	return report_field(row, "client_total");
}

static gboolean scale_max(const report_env *env, const char *ins_id, const char *score,
		double *min, double *max) {
	if(env == NULL || env->instruments == NULL || ins_id == NULL)
		return FALSE;
	const instrument *ins = instrument_set_get(env->instruments, ins_id);
	return ins != NULL && instrument_score_range(ins, score, min, max);
}

static json_t *scale_json(const report_env *env, const char *ins_id) {
	double lo, hi;
	if(!scale_max(env, ins_id, "total", &lo, &hi))
		return json_null();
	return json_pack("{s:f, s:f}", "min", lo, "max", hi);
}

/* --- visit and visits -------------------------------------------------------------------- */

json_t *report_visit_from(const json_t *v, const proto_report_filters *f) {
	json_t *r = report_head("visit", f, f->research == 1);
	json_object_update(r, (json_t *)v);
	report_class_visit(r);          /* good / poor per leg (report_class.h) */
	return r;
}

json_t *report_visits_from(const json_t *rows, const proto_report_filters *f) {
	json_t *r = report_head("visits", f, f->research == 1);
	json_object_set_new(r, "n", json_integer((json_int_t)json_array_size(rows)));
	json_object_set(r, "visits", (json_t *)rows);
	return r;
}

/* --- summary ------------------------------------------------------------------------------- */

typedef struct group {
	char *code;
	int visits, alerts, video, in_person;
	GArray *total, *vnum;          /* scored visits: client end total, visit number */
	GArray *ther_total;            /* the therapist's own end totals */
	GPtrArray *client;             /* (therapist groups) client of each scored visit */
	GHashTable *others;            /* the other side's codes */
} group;

static group *group_get(GHashTable *groups, GPtrArray *order, const char *code) {
	group *g = g_hash_table_lookup(groups, code);
	if(g == NULL) {
		g = g_new0(group, 1);
		g->code = g_strdup(code);
		g->total = g_array_new(FALSE, FALSE, sizeof(double));
		g->vnum = g_array_new(FALSE, FALSE, sizeof(double));
		g->ther_total = g_array_new(FALSE, FALSE, sizeof(double));
		g->client = g_ptr_array_new();
		g->others = g_hash_table_new(g_str_hash, g_str_equal);
		g_hash_table_insert(groups, g->code, g);
		g_ptr_array_add(order, g);
	}
	return g;
}

static void group_free(gpointer p) {
	group *g = p;
	g_array_free(g->total, TRUE);
	g_array_free(g->vnum, TRUE);
	g_array_free(g->ther_total, TRUE);
	g_ptr_array_free(g->client, TRUE);
	g_hash_table_destroy(g->others);
	g_free(g->code);
	g_free(g);
}

static gint group_cmp(gconstpointer a, gconstpointer b) {
	return strcmp((*(group *const *)a)->code, (*(group *const *)b)->code);
}

static void group_add(group *g, const json_t *row, const char *ins_id, const char *other) {
	g->visits++;
	g->alerts += (int)json_integer_value(json_object_get(row, "alerts"));
	const char *m = report_sfield(row, "modality");
	if(m && !strcmp(m, "video"))
		g->video++;
	else
		g->in_person++;
	if(other)
		g_hash_table_add(g->others, (gpointer)other);
	double t = total_of(row, ins_id), vn = report_field(row, "visit_number");
	if(isfinite(t) && isfinite(vn)) {
		g_array_append_val(g->total, t);
		g_array_append_val(g->vnum, vn);
		g_ptr_array_add(g->client, (gpointer)report_sfield(row, "client_code"));
	}
	double tt = report_field(row, "therapist_total");
	if(isfinite(tt))
		g_array_append_val(g->ther_total, tt);
}

static json_t *ceiling_json(const group *g, const report_env *env, gboolean have_max, double max) {
	int n = (int)g->total->len;
	double share = have_max && n > 0 ? stats_ceiling_share((const double *)(void *)g->total->data,
		n, max, REPORT_CEILING_EPS) : NAN;
	gboolean flag = isfinite(share) && n >= env->ceiling_min_n && share >= env->ceiling_share;
	return json_pack("{s:i, s:o, s:o, s:b}", "n", n, "at_max", have_max && n > 0 ?
		json_integer((json_int_t)lround(share * n)) : json_null(),
		"share", report_num(share), "flag", flag);
}

static json_t *group_json(const group *g, gboolean therapist, const report_env *env,
		gboolean have_max, double max) {
	int n = (int)g->total->len;
	const double *tot = (const double *)(void *)g->total->data;
	double trend = therapist ? within_slope(g->client, g->vnum, g->total)
		: report_slope((const double *)(void *)g->vnum->data, tot, n);
	json_t *o = json_pack("{s:s, s:i, s:{s:i, s:i}, s:i, s:o, s:o, s:o, s:o}",
		therapist ? "therapist_code" : "client_code", g->code,
		"visits", g->visits, "modalities", "video", g->video, "in_person", g->in_person,
		"scored", n, "total", describe_json(tot, n),
		"trend_per_visit", report_num(trend),
		"therapist_total", describe_json((const double *)(void *)g->ther_total->data,
			(int)g->ther_total->len),
		"ceiling", ceiling_json(g, env, have_max, max));
	json_object_set_new(o, "alerts", json_integer(g->alerts));
	if(!therapist && n > 0) {
		/* first and last scored visit by visit number */
		int first = 0, last = 0;
		for(int i = 1; i < n; i++) {
			if(g_array_index(g->vnum, double, i) < g_array_index(g->vnum, double, first))
				first = i;
			if(g_array_index(g->vnum, double, i) >= g_array_index(g->vnum, double, last))
				last = i;
		}
		json_object_set_new(o, "first_total", report_num(tot[first]));
		json_object_set_new(o, "last_total", report_num(tot[last]));
	}
	/* the other side's codes, sorted */
	GList *keys = g_list_sort(g_hash_table_get_keys(g->others), (GCompareFunc)strcmp);
	json_t *list = json_array();
	for(GList *l = keys; l; l = l->next)
		json_array_append_new(list, json_string(l->data));
	g_list_free(keys);
	json_object_set_new(o, therapist ? "clients" : "therapists", list);
	return o;
}

json_t *report_summary_from(const json_t *rows, const proto_report_filters *f,
		const report_env *env) {
	report_env defaults;
	if(env == NULL) {
		report_env_init(&defaults);
		env = &defaults;
	}
	const char *ins_id = choose_instrument(rows, f);
	double lo = 0, max = 0;
	gboolean have_max = scale_max(env, ins_id, "total", &lo, &max);
	GHashTable *th = g_hash_table_new(g_str_hash, g_str_equal);
	GHashTable *cl = g_hash_table_new(g_str_hash, g_str_equal);
	GPtrArray *th_order = g_ptr_array_new_with_free_func(group_free);
	GPtrArray *cl_order = g_ptr_array_new_with_free_func(group_free);
	size_t i;
	json_t *r;
	int ended = 0;
	json_array_foreach(rows, i, r) {
		/* summaries exist for ended visits; the rest were never held */
		if(!json_is_integer(json_object_get(r, "visit_number")))
			continue;
		ended++;
		const char *t = report_sfield(r, "therapist_code"), *c = report_sfield(r, "client_code");
		if(t == NULL || c == NULL)
			continue;
		group_add(group_get(th, th_order, t), r, ins_id, c);
		group_add(group_get(cl, cl_order, c), r, ins_id, t);
	}
	g_ptr_array_sort(th_order, group_cmp);
	g_ptr_array_sort(cl_order, group_cmp);
	json_t *therapists = json_array(), *clients = json_array();
	for(guint k = 0; k < th_order->len; k++)
		json_array_append_new(therapists, group_json(th_order->pdata[k], TRUE, env, have_max, max));
	for(guint k = 0; k < cl_order->len; k++)
		json_array_append_new(clients, group_json(cl_order->pdata[k], FALSE, env, have_max, max));
	json_t *out = report_head("summary", f, f->research == 1);
	json_object_set_new(out, "instrument", ins_id ? json_string(ins_id) : json_null());
	json_object_set_new(out, "scale", scale_json(env, ins_id));
	json_object_set_new(out, "visits", json_integer(ended));
	json_object_set_new(out, "ceiling_rule", json_pack("{s:f, s:i}", "share_at_least",
		env->ceiling_share, "answers_at_least", env->ceiling_min_n));
	json_object_set_new(out, "therapists", therapists);
	json_object_set_new(out, "clients", clients);
	g_hash_table_destroy(th);
	g_hash_table_destroy(cl);
	g_ptr_array_free(th_order, TRUE);
	g_ptr_array_free(cl_order, TRUE);
	return out;
}

/* --- compare ------------------------------------------------------------------------------ */

enum { M_VIDEO = 0, M_IN_PERSON = 1 };
static const char *const MOD_NAME[2] = { "video", "in_person" };

static int modality_of(const json_t *row) {
	const char *m = report_sfield(row, "modality");
	return m && !strcmp(m, "video") ? M_VIDEO : M_IN_PERSON;
}

static json_t *effect_json(const GArray *a, const GArray *b) {
	stats_effect e;
	if(stats_hedges_g((const double *)(void *)a->data, (int)a->len,
			(const double *)(void *)b->data, (int)b->len, &e) < 0)
		e.g = e.se = e.lo = e.hi = e.d = e.sd_pooled = e.j = NAN;
	return json_pack("{s:s, s:i, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
		"direction", "video - in_person", "n_video", (int)a->len, "n_in_person", (int)b->len,
		"g", report_num(e.g), "se", report_num(e.se), "lo", report_num(e.lo), "hi", report_num(e.hi),
		"d", report_num(e.d), "j", report_num(e.j), "sd_pooled", report_num(e.sd_pooled));
}

static json_t *formation_json(const GArray *vnum, const GArray *score, int max_points) {
	int n = (int)vnum->len;
	int *vi = g_new(int, n > 0 ? n : 1);
	for(int i = 0; i < n; i++)
		vi[i] = (int)g_array_index(vnum, double, i);
	stats_point *pts = g_new0(stats_point, max_points);
	int k = stats_formation(vi, (const double *)(void *)score->data, n, pts, max_points);
	json_t *list = json_array();
	for(int i = 0; i < k; i++)
		json_array_append_new(list, json_pack("{s:i, s:i, s:o, s:o, s:o, s:o, s:o}",
			"visit", pts[i].visit, "n", pts[i].n, "mean", report_num(pts[i].mean), "sd", report_num(pts[i].sd),
			"se", report_num(pts[i].se), "lo", report_num(pts[i].lo), "hi", report_num(pts[i].hi)));
	g_free(vi);
	g_free(pts);
	return list;
}

static gint name_cmp(gconstpointer a, gconstpointer b) {
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	if(!strcmp(x, "total"))
		return strcmp(y, "total") ? -1 : 0;
	if(!strcmp(y, "total"))
		return 1;
	return strcmp(x, y);
}

json_t *report_compare_from(const json_t *rows, const json_t *score_rows,
		const proto_report_filters *f, gboolean research, const report_env *env) {
	report_env defaults;
	if(env == NULL) {
		report_env_init(&defaults);
		env = &defaults;
	}
	const char *ins_id = choose_instrument(rows, f);
	/* the visits analysed: a client end total of the instrument */
	GHashTable *analysed = g_hash_table_new(g_str_hash, g_str_equal);   /* visit_id -> row */
	GArray *vnum[2], *total[2];
	GHashTable *clients[2];
	for(int m = 0; m < 2; m++) {
		vnum[m] = g_array_new(FALSE, FALSE, sizeof(double));
		total[m] = g_array_new(FALSE, FALSE, sizeof(double));
		clients[m] = g_hash_table_new(g_str_hash, g_str_equal);
	}
	/* quality (video) and congruence (all, video, in person) pairs */
	static const char *const QNAME[4] = { "mean_mos", "loss_pct", "freeze_s", "incidents" };
	GArray *qx[4], *qy[4], *ca[3], *cb[3];
	for(int q = 0; q < 4; q++) {
		qx[q] = g_array_new(FALSE, FALSE, sizeof(double));
		qy[q] = g_array_new(FALSE, FALSE, sizeof(double));
	}
	for(int k = 0; k < 3; k++) {
		ca[k] = g_array_new(FALSE, FALSE, sizeof(double));
		cb[k] = g_array_new(FALSE, FALSE, sizeof(double));
	}
	size_t i;
	json_t *r;
	json_array_foreach(rows, i, r) {
		double t = total_of(r, ins_id);
		if(!isfinite(t))
			continue;
		int m = modality_of(r);
		g_hash_table_insert(analysed, (gpointer)report_sfield(r, "visit_id"), r);
		double vn = report_field(r, "visit_number");
		if(isfinite(vn) && vn >= 1) {
			g_array_append_val(vnum[m], vn);
			g_array_append_val(total[m], t);
		}
		if(report_sfield(r, "client_code"))
			g_hash_table_add(clients[m], (gpointer)report_sfield(r, "client_code"));
		/* incidents is a count, 0 also when nothing was measured: it goes
		 * with the others only for visits whose connection was measured */
		gboolean measured = isfinite(report_field(r, "mean_mos")) || isfinite(report_field(r, "loss_pct"))
			|| isfinite(report_field(r, "freeze_s"));
		if(m == M_VIDEO && measured)
			for(int q = 0; q < 4; q++) {
				double x = report_field(r, QNAME[q]);
				if(isfinite(x)) {
					g_array_append_val(qx[q], x);
					g_array_append_val(qy[q], t);
				}
			}
		double tt = report_field(r, "therapist_total");
		if(isfinite(tt)) {
			int slots[2] = { 0, 1 + m };
			for(int k = 0; k < 2; k++) {
				g_array_append_val(ca[slots[k]], t);
				g_array_append_val(cb[slots[k]], tt);
			}
		}
	}
	/* every client score of the analysed visits, by name and modality */
	GHashTable *by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, NULL);
	GPtrArray *names = g_ptr_array_new();
	GPtrArray *arrays = g_ptr_array_new();       /* GArray*[2] per name, freed below */
	json_array_foreach(score_rows, i, r) {
		const char *role = report_sfield(r, "role"), *ins = report_sfield(r, "instrument_id"), *name = report_sfield(r, "name");
		const char *vid = report_sfield(r, "visit_id");
		double v = report_field(r, "value");
		if(!role || strcmp(role, "client") || !ins || !ins_id || strcmp(ins, ins_id)
				|| !name || !vid || !isfinite(v))
			continue;
		const json_t *vrow = g_hash_table_lookup(analysed, vid);
		if(vrow == NULL)
			continue;
		GArray **pair = g_hash_table_lookup(by_name, name);
		if(pair == NULL) {
			pair = g_new(GArray *, 2);
			pair[0] = g_array_new(FALSE, FALSE, sizeof(double));
			pair[1] = g_array_new(FALSE, FALSE, sizeof(double));
			g_hash_table_insert(by_name, (gpointer)name, pair);
			g_ptr_array_add(names, (gpointer)name);
			g_ptr_array_add(arrays, pair);
		}
		g_array_append_val(pair[modality_of(vrow)], v);
	}
	g_ptr_array_sort(names, name_cmp);
	gboolean margin_given;
	double margin = report_ni_margin(f, env, &margin_given);
	json_t *scores = json_array();
	for(guint k = 0; k < names->len; k++) {
		GArray **pair = g_hash_table_lookup(by_name, names->pdata[k]);
		json_t *s = json_pack("{s:s, s:o, s:o, s:o, s:o}", "score", (const char *)names->pdata[k],
			"scale", json_null(),
			"video", describe_json((const double *)(void *)pair[0]->data, (int)pair[0]->len),
			"in_person", describe_json((const double *)(void *)pair[1]->data, (int)pair[1]->len),
			"hedges_g", effect_json(pair[0], pair[1]));
		double lo, hi;
		if(scale_max(env, ins_id, names->pdata[k], &lo, &hi))
			json_object_set_new(s, "scale", json_pack("{s:f, s:f}", "min", lo, "max", hi));
		report_mixed_score(s, names->pdata[k], score_rows, analysed, ins_id, margin, margin_given, env);
		json_array_append_new(scores, s);
	}
	json_t *quality = json_pack("{s:s, s:s, s:s}", "score", "total", "modality", "video",
		"method", "spearman");
	for(int q = 0; q < 4; q++)
		json_object_set_new(quality, QNAME[q], corr_json((const double *)(void *)qx[q]->data,
			(const double *)(void *)qy[q]->data, (int)qx[q]->len, TRUE));
	report_mixed_quality(quality, rows, ins_id);
	json_t *congruence = json_object();
	static const char *const CNAME[3] = { "all", "video", "in_person" };
	for(int k = 0; k < 3; k++) {
		int n = (int)ca[k]->len;
		const double *a = (const double *)(void *)ca[k]->data, *b = (const double *)(void *)cb[k]->data;
		stats_desc dc;
		double *diff = g_new(double, n > 0 ? n : 1);
		for(int j = 0; j < n; j++)
			diff[j] = a[j] - b[j];
		double mean_diff = n > 0 && stats_describe(diff, n, &dc) == 0 ? dc.mean : NAN;
		g_free(diff);
		json_object_set_new(congruence, CNAME[k], json_pack("{s:i, s:o, s:o, s:o}", "n", n,
			"mean_abs_diff", report_num(n > 0 ? stats_mean_abs_diff(a, b, n) : NAN),
			"mean_diff_client_minus_therapist", report_num(mean_diff),
			"pearson", corr_json(a, b, n, FALSE)));
	}
	json_t *formation = json_pack("{s:s}", "score", "total");
	json_t *modalities = json_object();
	for(int m = 0; m < 2; m++) {
		json_object_set_new(formation, MOD_NAME[m],
			formation_json(vnum[m], total[m], env->formation_points > 0 ? env->formation_points : 1));
		json_object_set_new(modalities, MOD_NAME[m], json_pack("{s:i, s:i}", "visits",
			(int)total[m]->len, "clients", (int)g_hash_table_size(clients[m])));
	}
	report_mixed_formation(formation, rows, ins_id);
	json_t *out = report_head("compare", f, research);
	json_object_set_new(out, "instrument", ins_id ? json_string(ins_id) : json_null());
	json_object_set_new(out, "scale", scale_json(env, ins_id));
	json_object_set_new(out, "visits", json_integer(g_hash_table_size(analysed)));
	json_object_set_new(out, "modalities", modalities);
	json_object_set_new(out, "scores", scores);
	json_object_set_new(out, "formation", formation);
	json_object_set_new(out, "quality", quality);
	json_object_set_new(out, "congruence", congruence);
	json_object_set_new(out, "video_class", report_class_compare(rows, ins_id));   /* report_class.h */
	json_object_set_new(out, "notes", json_pack("[s, s]",
		"Each visit counts once; visits of one client are not independent, so the intervals "
		"are narrower than a model of clients would give (docs/reports.md).",
		"Correlations with connection quality describe association across video visits, not cause."));
	json_array_append_new(json_object_get(out, "notes"), json_string("`mixed` fits a model of "
		"clients (a random intercept per client, and per therapist when there are at least 5 "
		"therapists: see its `model`; REML, Satterthwaite df) and is the figure to "
		"read for online vs in person; `noninferiority` judges its 95 % CI against the margin "
		"(docs/statistics.md)."));
	for(guint k = 0; k < arrays->len; k++) {
		GArray **pair = arrays->pdata[k];
		g_array_free(pair[0], TRUE);
		g_array_free(pair[1], TRUE);
		g_free(pair);
	}
	g_ptr_array_free(arrays, TRUE);
	g_ptr_array_free(names, TRUE);
	g_hash_table_destroy(by_name);
	for(int m = 0; m < 2; m++) {
		g_array_free(vnum[m], TRUE);
		g_array_free(total[m], TRUE);
		g_hash_table_destroy(clients[m]);
	}
	for(int q = 0; q < 4; q++) {
		g_array_free(qx[q], TRUE);
		g_array_free(qy[q], TRUE);
	}
	for(int k = 0; k < 3; k++) {
		g_array_free(ca[k], TRUE);
		g_array_free(cb[k], TRUE);
	}
	g_hash_table_destroy(analysed);
	return out;
}

/* --- reading the store ------------------------------------------------------------------- */

/* A read in flight. The waiter may give up (timeout); the store's
 * callbacks keep their own reference, and a given-up read stops at its
 * next row. */
typedef struct fetch {
	volatile gint refs;
	volatile gint abandoned;
	GMutex m;
	GCond c;
	gboolean done;
	store_rc rc;
	char error[200];
	json_t *rows;
} fetch;

static void fetch_unref(fetch *x) {
	if(!g_atomic_int_dec_and_test(&x->refs))
		return;
	json_decref(x->rows);
	g_mutex_clear(&x->m);
	g_cond_clear(&x->c);
	g_free(x);
}

static int fetch_row(const json_t *row, void *user) {
	fetch *x = user;
	if(g_atomic_int_get(&x->abandoned))
		return 1;
	json_array_append(x->rows, (json_t *)row);
	return 0;
}

static void fetch_done(store_rc rc, const char *error, void *user) {
	fetch *x = user;
	g_mutex_lock(&x->m);
	x->rc = rc;
	g_strlcpy(x->error, error ? error : "", sizeof(x->error));
	x->done = TRUE;
	g_cond_signal(&x->c);
	g_mutex_unlock(&x->m);
	fetch_unref(x);
}

json_t *report_fetch(store *st, store_report_what what, const store_report_filter *f,
		gint64 timeout_us, proto_error *err) {
	fetch *x = g_new0(fetch, 1);
	g_atomic_int_set(&x->refs, 2);
	g_mutex_init(&x->m);
	g_cond_init(&x->c);
	x->rows = json_array();
	if(store_report_rows(st, what, f, fetch_row, fetch_done, x) < 0) {
		g_atomic_int_set(&x->refs, 1);
		fetch_unref(x);
		proto_fail(err, PROTO_ERR_STORE, "The store refused the report read");
		return NULL;
	}
	gint64 until = timeout_us > 0 ? g_get_monotonic_time() + timeout_us : 0;
	g_mutex_lock(&x->m);
	while(!x->done) {
		if(until == 0)
			g_cond_wait(&x->c, &x->m);
		else if(!g_cond_wait_until(&x->c, &x->m, until))
			break;
	}
	gboolean done = x->done;
	store_rc rc = x->rc;
	g_mutex_unlock(&x->m);
	json_t *rows = NULL;
	if(!done) {
		g_atomic_int_set(&x->abandoned, 1);
		proto_fail(err, PROTO_ERR_STORE, "The store did not answer within %d s; try again or narrow the filters",
			(int)(timeout_us / G_USEC_PER_SEC));
	} else if(rc == STORE_NOT_FOUND) {
		proto_fail(err, PROTO_ERR_NO_SUCH_VISIT, "No such visit%s",
			f->research_only ? " (or it has no research consent)" : "");
	} else if(rc != STORE_OK) {
		proto_fail(err, PROTO_ERR_STORE, "The report could not be read (%s)", store_rc_name(rc));
	} else {
		rows = json_incref(x->rows);
	}
	fetch_unref(x);
	return rows;
}

json_t *report_build(store *st, proto_report_kind kind, const proto_report_filters *f,
		const report_env *env, gint64 timeout_us, proto_error *err) {
	store_report_filter sf;
	report_store_filter(kind, f, &sf);
	json_t *rows = NULL, *scores = NULL, *out = NULL;
	switch(kind) {
		case PROTO_REPORT_VISIT:
			if((rows = report_fetch(st, STORE_READ_VISIT, &sf, timeout_us, err)) == NULL)
				return NULL;
			if(json_array_size(rows) == 1)
				out = report_visit_from(json_array_get(rows, 0), f);
			else
				proto_fail(err, PROTO_ERR_NO_SUCH_VISIT, "No such visit");
			break;
		case PROTO_REPORT_VISITS:
			if((rows = report_fetch(st, STORE_READ_VISITS, &sf, timeout_us, err)) != NULL)
				out = report_visits_from(rows, f);
			break;
		case PROTO_REPORT_SUMMARY:
			if((rows = report_fetch(st, STORE_READ_VISITS, &sf, timeout_us, err)) != NULL)
				out = report_summary_from(rows, f, env);
			break;
		case PROTO_REPORT_COMPARE:
			if((rows = report_fetch(st, STORE_READ_VISITS, &sf, timeout_us, err)) != NULL
					&& (scores = report_fetch(st, STORE_READ_END_SCORES, &sf, timeout_us, err)) != NULL)
				out = report_compare_from(rows, scores, f, sf.research_only, env);
			break;
	}
	json_decref(rows);
	json_decref(scores);
	return out;
}
