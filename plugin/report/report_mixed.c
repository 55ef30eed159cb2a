/*
 * report_mixed.c — see report_mixed.h: the compare report's mixed-model
 * readings (core/lmm.h) and the non-inferiority conclusion.
 *
 * Every model here has a random intercept per client; when the fitted
 * visits have enough therapists (report_mixed_therapist_rule(): at least
 * REPORT_MIXED_MIN_THERAPISTS therapists, one of them with two or more
 * clients, every visit with a therapist code and every client with one
 * therapist) it also has a random intercept per therapist, clients nested
 * in therapists (core/lmm_nested.h, lme4's (1 | therapist/client)), else
 * the client-only model (core/lmm.h) as before. `model` and `method` say
 * which was fitted, `therapist_term` why there is none
 * (docs/statistics.md "Therapists: clients nested in therapists").
 */
#include "report_mixed.h"
#include "report_json.h"
#include "lmm.h"
#include "lmm_nested.h"

#include <math.h>
#include <string.h>

#define MIXED_METHOD "REML linear mixed model, random intercept per client; 95 % CI with " \
	"Satterthwaite degrees of freedom (as R lmerTest)"
#define MIXED_METHOD_NESTED "REML linear mixed model, random intercepts per therapist and per " \
	"client within therapist (lme4 (1 | therapist/client)); 95 % CI with Satterthwaite degrees " \
	"of freedom (as R lmerTest)"

static gboolean is_video(const json_t *row) {
	const char *m = report_sfield(row, "modality");
	return m && !strcmp(m, "video");
}

/* The observations of one model: y, the design row-major (column 0 the
 * intercept), the client index, and the therapists seen. */
typedef struct obs {
	int p;
	GArray *y, *x, *g, *t;      /* t: the therapist index, -1 without a code */
	GHashTable *clients;        /* code → index + 1 */
	GHashTable *therapists;     /* code → index + 1 */
} obs;

static void obs_init(obs *o, int p) {
	o->p = p;
	o->y = g_array_new(FALSE, FALSE, sizeof(double));
	o->x = g_array_new(FALSE, FALSE, sizeof(double));
	o->g = g_array_new(FALSE, FALSE, sizeof(int));
	o->t = g_array_new(FALSE, FALSE, sizeof(int));
	o->clients = g_hash_table_new(g_str_hash, g_str_equal);
	o->therapists = g_hash_table_new(g_str_hash, g_str_equal);
}

static void obs_free(obs *o) {
	g_array_free(o->y, TRUE);
	g_array_free(o->x, TRUE);
	g_array_free(o->g, TRUE);
	g_array_free(o->t, TRUE);
	g_hash_table_destroy(o->clients);
	g_hash_table_destroy(o->therapists);
}

/* code → its dense index (0, 1, …) in `index` (values index + 1). */
static int code_index(GHashTable *index, const char *code) {
	int idx = GPOINTER_TO_INT(g_hash_table_lookup(index, code));
	if(idx == 0) {
		idx = (int)g_hash_table_size(index) + 1;
		g_hash_table_insert(index, (gpointer)code, GINT_TO_POINTER(idx));
	}
	return idx - 1;
}

/* One observation of the visit row vrow: y with covariates cov[0..p−2]. */
static void obs_add(obs *o, const json_t *vrow, double y, const double *cov) {
	const char *client = report_sfield(vrow, "client_code"), *ther = report_sfield(vrow, "therapist_code");
	if(client == NULL || !isfinite(y))
		return;
	for(int j = 0; j < o->p - 1; j++)
		if(!isfinite(cov[j]))
			return;
	int idx = code_index(o->clients, client), tidx = ther ? code_index(o->therapists, ther) : -1;
	double one = 1;
	g_array_append_val(o->y, y);
	g_array_append_val(o->x, one);
	g_array_append_vals(o->x, cov, o->p - 1);
	g_array_append_val(o->g, idx);
	g_array_append_val(o->t, tidx);
}

const char *report_mixed_therapist_rule(const int *therapist, const int *client, int n) {
	if(n <= 0)
		return "no visits";
	int therapists = 0, max_t = -1, max_c = -1;
	for(int i = 0; i < n; i++) {
		if(therapist[i] < 0)
			return "some visits have no therapist code";
		max_t = MAX(max_t, therapist[i]);
		max_c = MAX(max_c, client[i]);
	}
	/* dense indices (obs_add's), so arrays of their size are bounded by n */
	if(max_t >= n || max_c >= n || max_c < 0)
		return "bad therapist or client index";
	int *of_client = g_new(int, max_c + 1), *clients_of = g_new0(int, max_t + 1);
	const char *why = NULL;
	for(int c = 0; c <= max_c; c++)
		of_client[c] = -1;
	for(int i = 0; i < n && why == NULL; i++) {
		int c = client[i], t = therapist[i];
		if(of_client[c] < 0) {
			of_client[c] = t;
			therapists += clients_of[t]++ == 0;
		} else if(of_client[c] != t) {
			why = "a client was seen by more than one therapist, so clients are not nested in therapists";
		}
	}
	gboolean shared = FALSE;
	for(int t = 0; t <= max_t; t++)
		shared |= clients_of[t] >= 2;
	g_free(of_client);
	g_free(clients_of);
	if(why)
		return why;
	if(therapists < REPORT_MIXED_MIN_THERAPISTS)
		return "fewer than " G_STRINGIFY(REPORT_MIXED_MIN_THERAPISTS) " therapists";
	if(!shared)
		return "no therapist has two or more clients";
	return NULL;
}

/* The fit of o's model, coefficient 1 (the one predictor) as JSON: the
 * nested model when the therapist rule allows it and it can be fitted,
 * else the client-only model. lo/hi receive its 95 % interval (NaN when
 * refused). */
static json_t *fit_json(const obs *o, const char *direction, double *lo_out, double *hi_out) {
	int n = (int)o->y->len;
	const double *y = (const double *)(void *)o->y->data, *x = (const double *)(void *)o->x->data;
	const int *g = (const int *)(void *)o->g->data, *t = (const int *)(void *)o->t->data;
	const char *no_term = report_mixed_therapist_rule(t, g, n);
	lmm_nested_result nm;
	gboolean nested = FALSE;
	if(no_term == NULL) {
		nested = lmm_nested_fit(y, x, t, g, n, o->p, NULL, &nm) == 0;
		if(!nested)
			no_term = lmm_status_text(nm.status);
	}
	lmm_result m;
	lmm_status status;
	double s2c, s2, lo, hi;
	double s2t = NAN;
	const double *beta, *sev, *dfv;   /* whichever model was fitted */
	int boundary, boundary_t = 0;
	if(nested) {
		lmm_nested_ci(&nm, 1, 0.95, &lo, &hi);
		status = nm.status;
		beta = nm.beta, sev = nm.se, dfv = nm.df;
		s2t = nm.sigma2_t;
		s2c = nm.sigma2_c;
		s2 = nm.sigma2;
		boundary_t = nm.boundary_therapist;
		boundary = nm.boundary_client || nm.boundary_therapist;
	} else {
		lmm_fit_reml(y, x, g, n, o->p, &m);
		lmm_ci(&m, 1, 0.95, &lo, &hi);
		status = m.status;
		beta = m.beta, sev = m.se, dfv = m.df;
		s2c = m.sigma2_b;
		s2 = m.sigma2;
		boundary = m.status == LMM_OK && m.boundary;
	}
	double est = beta[1], se = sev[1], df = dfv[1];
	if(lo_out)
		*lo_out = lo;
	if(hi_out)
		*hi_out = hi;
	json_t *ci = json_array();
	json_array_append_new(ci, report_num(lo));
	json_array_append_new(ci, report_num(hi));
	json_t *j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:i, s:i, s:i, s:o, s:o, s:b, s:s}",
		"direction", direction, "estimate", report_num(est), "ci", ci, "se", report_num(se),
		"df", report_num(df), "n", n, "n_clients", (int)g_hash_table_size(o->clients),
		"n_therapists", (int)g_hash_table_size(o->therapists),
		"sd_client", report_num(sqrt(s2c)), "sd_residual", report_num(sqrt(s2)),
		"boundary", status == LMM_OK && boundary, "method", nested ? MIXED_METHOD_NESTED : MIXED_METHOD);
	json_object_set_new(j, "model", json_string(nested ? "therapist/client" : "client"));
	json_object_set_new(j, "sd_therapist", report_num(sqrt(s2t)));
	json_object_set_new(j, "var_therapist", report_num(s2t));
	json_object_set_new(j, "boundary_therapist", json_boolean(nested && boundary_t));
	json_object_set_new(j, "therapist_term", no_term ? json_string(no_term) : json_null());
	json_object_set_new(j, "refused", status == LMM_OK ? json_null()
		: json_string(lmm_status_text(status)));
	return j;
}

double report_ni_margin(const proto_report_filters *f, const report_env *env, gboolean *from_filter) {
	gboolean given = f != NULL && isfinite(f->margin) && f->margin > 0;
	if(from_filter)
		*from_filter = given;
	if(given)
		return f->margin;
	return env != NULL && isfinite(env->ni_margin) && env->ni_margin > 0 ? env->ni_margin
		: REPORT_NI_MARGIN;
}

const char *report_ni_conclusion(double lo, double hi, double margin) {
	if(!isfinite(lo) || !isfinite(hi) || !(margin > 0))
		return "inconclusive";
	if(lo > -margin)
		return "noninferior";
	if(hi < -margin)
		return "inferior";
	return "inconclusive";
}

static gboolean score_range(const report_env *env, const char *ins_id, const char *score,
		double *range) {
	double lo, hi;
	const instrument *ins = env && env->instruments && ins_id
		? instrument_set_get(env->instruments, ins_id) : NULL;
	if(ins == NULL || !instrument_score_range(ins, score, &lo, &hi) || !(hi > lo))
		return FALSE;
	*range = hi - lo;
	return TRUE;
}

void report_mixed_score(json_t *s, const char *name, const json_t *score_rows,
		GHashTable *analysed, const char *ins_id, double margin, gboolean from_filter,
		const report_env *env) {
	obs o;
	obs_init(&o, 2);
	size_t i;
	json_t *r;
	json_array_foreach(score_rows, i, r) {
		const char *role = report_sfield(r, "role"), *ins = report_sfield(r, "instrument_id"), *nm = report_sfield(r, "name");
		const char *vid = report_sfield(r, "visit_id");
		if(!role || strcmp(role, "client") || !ins || !ins_id || strcmp(ins, ins_id) || !nm
				|| strcmp(nm, name) || !vid)
			continue;
		const json_t *vrow = g_hash_table_lookup(analysed, vid);
		if(vrow == NULL)
			continue;
		double online = is_video(vrow) ? 1 : 0;
		obs_add(&o, vrow, report_field(r, "value"), &online);
	}
	double lo, hi;
	json_object_set_new(s, "mixed", fit_json(&o, "video - in_person", &lo, &hi));
	obs_free(&o);
	/* the margin is in points of the total; a subscale gets its share of
	 * it by range (a 0–10 subscale of a 0–40 total: a quarter) */
	double m = margin, r_total, r_score;
	gboolean scaled = strcmp(name, "total") != 0 && score_range(env, ins_id, "total", &r_total)
		&& score_range(env, ins_id, name, &r_score);
	if(scaled)
		m = margin * r_score / r_total;
	json_object_set_new(s, "noninferiority", json_pack("{s:f, s:s, s:o, s:o, s:f, s:s, s:s}",
		"margin", m, "margin_source", from_filter ? "filter" : "default",
		"lower_bound", report_num(lo), "upper_bound", report_num(hi), "level", 0.95,
		"rule", "noninferior when the lower bound of the mixed model's two-sided 95 % CI "
		"(one-sided 97.5 %) is above -margin; inferior when its upper bound is below -margin",
		"conclusion", report_ni_conclusion(lo, hi, m)));
	if(scaled)
		json_object_set_new(json_object_get(s, "noninferiority"), "margin_total", json_real(margin));
}

/* The end total of a visit row when it is an answer of ins_id. */
static double total_of(const json_t *row, const char *ins_id) {
	const char *ins = report_sfield(row, "client_instrument");
	if(ins_id == NULL || ins == NULL || strcmp(ins, ins_id) != 0)
		return NAN;
	return report_field(row, "client_total");
}

/* The end total on the visit field `key`, over the visits of one modality,
 * with a random intercept per client. */
static json_t *visit_model(const json_t *visit_rows, const char *ins_id, gboolean video,
		const char *key, const char *direction) {
	obs o;
	obs_init(&o, 2);
	size_t i;
	json_t *r;
	json_array_foreach(visit_rows, i, r) {
		double x = report_field(r, key);
		if(is_video(r) == video)
			obs_add(&o, r, total_of(r, ins_id), &x);
	}
	json_t *j = fit_json(&o, direction, NULL, NULL);
	obs_free(&o);
	return j;
}

void report_mixed_formation(json_t *formation, const json_t *visit_rows, const char *ins_id) {
	json_object_set_new(formation, "mixed", json_pack("{s:o, s:o}",
		"video", visit_model(visit_rows, ins_id, TRUE, "visit_number", "points per visit number"),
		"in_person", visit_model(visit_rows, ins_id, FALSE, "visit_number", "points per visit number")));
}

void report_mixed_quality(json_t *quality, const json_t *visit_rows, const char *ins_id) {
	json_object_set_new(quality, "mixed", json_pack("{s:o, s:o}",
		"mean_mos", visit_model(visit_rows, ins_id, TRUE, "mean_mos", "points per MOS point"),
		"freeze_s", visit_model(visit_rows, ins_id, TRUE, "freeze_s", "points per freeze second")));
}
