/*
 * quality.c — see quality.h. The sums are plain counters; the JSON is
 * built with jansson (off the hot path: once per bucket or per pulse).
 */
#include "quality.h"
#include "emodel.h"
#include "callclass.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

/* --- sums ------------------------------------------------------------------ */
void quality_sum_add(quality_sum *s, const meter_window *w) {
	if(s->windows == 0 || w->start_us < s->start_us)
		s->start_us = w->start_us;
	if(w->end_us > s->end_us)
		s->end_us = w->end_us;
	s->windows++;
	if(w->dir == METER_DOWN)
		s->down_windows++;
	if(w->end_us > w->start_us)
		s->dur_us += w->end_us - w->start_us;
	if(w->expected > 0) {
		s->counted_windows++;
		s->expected += w->expected;
		s->packets += w->packets;
		s->lost += w->lost > 0 ? w->lost : 0;
	}
	if(w->loss_pct >= 0) {
		s->loss_sum += w->loss_pct;
		s->loss_n++;
	}
	if(w->jitter_ms >= 0) {
		s->jitter_sum += w->jitter_ms;
		s->jitter_n++;
		if(w->jitter_ms > s->jitter_max)
			s->jitter_max = w->jitter_ms;
	}
	if(w->dir == METER_DOWN && w->rtt_ms >= 0) {
		s->rtt_sum += w->rtt_ms;
		s->rtt_n++;
		if(w->rtt_ms > s->rtt_max)
			s->rtt_max = w->rtt_ms;
	}
	s->bytes += w->bytes;
	s->frames += w->frames;
	s->freezes += w->freezes;
	s->freeze_ms += w->freeze_ms;
	s->stalls += w->stalls;
	s->stall_ms += w->stall_ms;
	s->pli += w->pli;
	s->fir += w->fir;
	s->nack += w->nack;
}

void quality_sum_merge(quality_sum *into, const quality_sum *from) {
	if(from->windows == 0)
		return;
	if(into->windows == 0 || from->start_us < into->start_us)
		into->start_us = from->start_us;
	if(from->end_us > into->end_us)
		into->end_us = from->end_us;
	into->windows += from->windows;
	into->down_windows += from->down_windows;
	into->dur_us += from->dur_us;
	into->packets += from->packets;
	into->expected += from->expected;
	into->lost += from->lost;
	into->counted_windows += from->counted_windows;
	into->loss_sum += from->loss_sum;
	into->loss_n += from->loss_n;
	into->jitter_sum += from->jitter_sum;
	into->jitter_n += from->jitter_n;
	if(from->jitter_max > into->jitter_max)
		into->jitter_max = from->jitter_max;
	into->rtt_sum += from->rtt_sum;
	into->rtt_n += from->rtt_n;
	if(from->rtt_max > into->rtt_max)
		into->rtt_max = from->rtt_max;
	into->bytes += from->bytes;
	into->frames += from->frames;
	into->freezes += from->freezes;
	into->freeze_ms += from->freeze_ms;
	into->stalls += from->stalls;
	into->stall_ms += from->stall_ms;
	into->pli += from->pli;
	into->fir += from->fir;
	into->nack += from->nack;
}

double quality_sum_loss_pct(const quality_sum *s) {
	if(s->expected > 0)
		return 100.0 * (double)s->lost / (double)s->expected;
	return s->loss_n > 0 ? s->loss_sum / (double)s->loss_n : -1;
}

double quality_sum_jitter_ms(const quality_sum *s) {
	return s->jitter_n > 0 ? s->jitter_sum / (double)s->jitter_n : -1;
}

double quality_sum_rtt_ms(const quality_sum *s) {
	return s->rtt_n > 0 ? s->rtt_sum / (double)s->rtt_n : -1;
}

double quality_sum_bitrate_kbps(const quality_sum *s) {
	return s->dur_us > 0 ? (double)s->bytes * 8.0 * 1000.0 / (double)s->dur_us : 0;
}

double quality_sum_fps(const quality_sum *s) {
	return s->dur_us > 0 ? (double)s->frames * 1e6 / (double)s->dur_us : 0;
}

/* --- the visit ----------------------------------------------------------------- */
int quality_visit_init(quality_visit *q, int context_s) {
	memset(q, 0, sizeof(*q));
	if(context_s < 1)
		context_s = 1;
	q->context_s = context_s;
	int cap = (int)((context_s * 1000000LL + Q_BUCKET_US - 1) / Q_BUCKET_US) + 1;
	if(cap > Q_RING_MAX)
		cap = Q_RING_MAX;
	q->cap = cap;
	q->ring = calloc((size_t)cap * Q_LEGS * Q_MEDIA, sizeof(quality_sum));
	return q->ring ? 0 : -1;
}

void quality_visit_free(quality_visit *q) {
	free(q->ring);
	q->ring = NULL;
}

static quality_sum *ring_at(const quality_visit *q, int slot) {
	return &q->ring[(size_t)slot * Q_LEGS * Q_MEDIA];
}

static void emit(quality_visit *q, quality_leg leg, int medium, quality_incident_kind kind,
		int64_t start, int64_t end, double peak) {
	q->incidents_total++;
	if(q->n_done >= Q_INCIDENTS_MAX) {
		q->dropped_incidents++;
		return;
	}
	quality_incident *i = &q->done[q->n_done++];
	i->leg = leg;
	i->medium = medium;
	i->kind = kind;
	i->started_us = start;
	i->ended_us = end < start ? start : end;
	i->peak = peak;
}

static void track(quality_visit *q, quality_leg leg, int m, const meter_window *w) {
	quality_track *t = &q->track[leg][m];
	/* freezes: complete when counted */
	if(w->freezes > 0)
		emit(q, leg, m, QI_FREEZE, w->end_us - w->freeze_ms * 1000, w->end_us, (double)w->freeze_ms);
	/* stalls: open at detection, close when media flows again */
	if(w->dir == METER_UP) {
		if(!t->stall_open && w->stall_ms > 0 && (w->stalls > 0 || w->packets == 0)) {
			t->stall_open = true;
			t->stall_start = w->end_us - (w->max_gap_ms > 0 ? w->max_gap_ms : w->stall_ms) * 1000;
		}
		/* media is back in this window; the silence that ended in it is
		 * its longest gap (meter.h), which dates the return */
		if(t->stall_open && w->packets > 0) {
			t->stall_open = false;
			int64_t end = t->stall_start + w->max_gap_ms * 1000;
			if(end < w->start_us || end > w->end_us)
				end = w->start_us;
			emit(q, leg, m, QI_STALL, t->stall_start, end, (double)(end - t->stall_start) / 1000.0);
		}
	}
	/* loss bursts, with hysteresis */
	if(w->loss_pct >= 0) {
		if(!t->loss_open && w->loss_pct >= Q_LOSS_OPEN_PCT) {
			t->loss_open = true;
			t->loss_start = w->start_us;
			t->loss_peak = w->loss_pct;
			t->loss_calm = 0;
		} else if(t->loss_open) {
			if(w->loss_pct > t->loss_peak)
				t->loss_peak = w->loss_pct;
			t->loss_calm = w->loss_pct < Q_LOSS_CLOSE_PCT ? t->loss_calm + 1 : 0;
			if(t->loss_calm >= Q_CLOSE_WINDOWS) {
				t->loss_open = false;
				emit(q, leg, m, QI_LOSS_BURST, t->loss_start, w->end_us, t->loss_peak);
			}
		}
	}
	/* high RTT (down legs measure it) */
	if(w->dir == METER_DOWN && w->rtt_ms >= 0) {
		if(!t->rtt_open && w->rtt_ms >= Q_RTT_OPEN_MS) {
			t->rtt_open = true;
			t->rtt_start = w->start_us;
			t->rtt_peak = w->rtt_ms;
			t->rtt_calm = 0;
		} else if(t->rtt_open) {
			if(w->rtt_ms > t->rtt_peak)
				t->rtt_peak = w->rtt_ms;
			t->rtt_calm = w->rtt_ms < Q_RTT_CLOSE_MS ? t->rtt_calm + 1 : 0;
			if(t->rtt_calm >= Q_CLOSE_WINDOWS) {
				t->rtt_open = false;
				emit(q, leg, m, QI_HIGH_RTT, t->rtt_start, w->end_us, t->rtt_peak);
			}
		}
	}
}

void quality_feed(quality_visit *q, quality_leg leg, const meter_window *w) {
	if(leg < 0 || leg >= Q_LEGS)
		return;
	int m = w->video ? 1 : 0;
	if(q->cur_start_us == 0)
		q->cur_start_us = w->start_us > 0 ? w->start_us : 1;
	quality_sum_add(&q->cur[leg][m], w);
	quality_sum_add(&q->total[leg][m], w);
	track(q, leg, m, w);
}

bool quality_roll(quality_visit *q, int64_t now_us, bool force,
		quality_sum bucket[Q_LEGS][Q_MEDIA]) {
	if(q->cur_start_us == 0)
		return false;
	if(!force && now_us - q->cur_start_us < Q_BUCKET_US)
		return false;
	int slot = (q->head + q->n) % q->cap;
	if(q->n == q->cap) {
		slot = q->head;
		q->head = (q->head + 1) % q->cap;
	} else {
		q->n++;
	}
	memcpy(ring_at(q, slot), q->cur, sizeof(q->cur));
	if(bucket)
		memcpy(bucket, q->cur, sizeof(q->cur));
	memset(q->cur, 0, sizeof(q->cur));
	q->cur_start_us = 0;
	return true;
}

void quality_note(quality_visit *q, quality_leg leg, int medium,
		quality_incident_kind kind, int64_t started_us, int64_t ended_us) {
	emit(q, leg, medium, kind, started_us, ended_us, (double)(ended_us - started_us) / 1000.0);
}

void quality_close_all(quality_visit *q, int64_t now_us) {
	for(int l = 0; l < Q_LEGS; l++)
		for(int m = 0; m < Q_MEDIA; m++) {
			quality_track *t = &q->track[l][m];
			if(t->stall_open)
				emit(q, l, m, QI_STALL, t->stall_start, now_us, (double)(now_us - t->stall_start) / 1000.0);
			if(t->loss_open)
				emit(q, l, m, QI_LOSS_BURST, t->loss_start, now_us, t->loss_peak);
			if(t->rtt_open)
				emit(q, l, m, QI_HIGH_RTT, t->rtt_start, now_us, t->rtt_peak);
			memset(t, 0, sizeof(*t));
		}
}

int quality_take_incidents(quality_visit *q, quality_incident *out, int max) {
	if(!out || max <= 0)
		return 0;
	int n = q->n_done < max ? q->n_done : max;
	memcpy(out, q->done, sizeof(quality_incident) * (size_t)n);
	memmove(q->done, q->done + n, sizeof(quality_incident) * (size_t)(q->n_done - n));
	q->n_done -= n;
	return n;
}

/* --- JSON ---------------------------------------------------------------------- */
/* v rounded to 1/scale; null when unknown (negative), NaN or absurd (the
 * cast below is only defined well inside the range of long long) */
static json_t *num_or_null(double v, double scale) {
	if(!(v >= 0 && v < 1e15))
		return json_null();
	return json_real((double)(long long)(v * scale + 0.5) / scale);
}

/* milliseconds as seconds rounded to 0.1 */
static double tenths(int64_t ms) {
	return (double)((ms + (ms < 0 ? -50 : 50)) / 100) / 10.0;
}

static json_t *tenths_s(int64_t ms) {
	return json_real(tenths(ms));
}

static json_t *sum_json(const quality_sum *s, bool video, bool down) {
	json_t *o = json_object();
	json_object_set_new(o, "seconds", tenths_s(s->dur_us / 1000));
	json_object_set_new(o, "loss_pct", num_or_null(quality_sum_loss_pct(s), 100));
	json_object_set_new(o, "jitter_ms", num_or_null(quality_sum_jitter_ms(s), 100));
	if(down) {
		json_object_set_new(o, "rtt_ms", num_or_null(quality_sum_rtt_ms(s), 100));
		json_object_set_new(o, "rtt_max_ms", num_or_null(s->rtt_n ? s->rtt_max : -1, 100));
		json_object_set_new(o, "nack", json_integer(s->nack));
		if(video) {
			json_object_set_new(o, "pli", json_integer(s->pli));
			json_object_set_new(o, "fir", json_integer(s->fir));
		}
	} else {
		json_object_set_new(o, "packets", json_integer(s->packets));
		json_object_set_new(o, "expected", json_integer(s->expected));
		json_object_set_new(o, "lost", json_integer(s->lost));
		json_object_set_new(o, "bitrate_kbps", num_or_null(quality_sum_bitrate_kbps(s), 10));
		json_object_set_new(o, "stalls", json_integer(s->stalls));
		json_object_set_new(o, "stall_s", tenths_s(s->stall_ms));
		if(video) {
			json_object_set_new(o, "fps", num_or_null(quality_sum_fps(s), 10));
			json_object_set_new(o, "freezes", json_integer(s->freezes));
			json_object_set_new(o, "freeze_s", tenths_s(s->freeze_ms));
		}
	}
	return o;
}

int quality_sum_format(const quality_sum *s, bool video, char *buf, size_t len) {
	/* the sample: up legs count packets, down legs carry rtt */
	json_t *o = sum_json(s, video, s->down_windows > 0);
	char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	int n = -1;
	if(t && strlen(t) < len) {
		n = (int)strlen(t);
		memcpy(buf, t, (size_t)n + 1);
	} else if(len) {
		buf[0] = '\0';
	}
	free(t);
	return n;
}

static json_t *path_json(const quality_sum *up, const quality_sum *sender_down, const quality_sum *recv_down) {
	double rtt_a = quality_sum_rtt_ms(sender_down), rtt_b = quality_sum_rtt_ms(recv_down);
	double jit_a = quality_sum_jitter_ms(up), jit_b = quality_sum_jitter_ms(recv_down);
	double loss_a = quality_sum_loss_pct(up), loss_b = quality_sum_loss_pct(recv_down);
	if(loss_a < 0 && loss_b < 0)
		return json_null();   /* no audio either way */
	/* The relay keeps the sender's sequence gaps and timing, so what the
	 * receiver reports (loss, jitter) already covers the whole path; the
	 * sender's up leg stands in until the receiver has reported. RTT: the
	 * two legs' round trips add (each measured by the core's SR/RR). */
	double rtt = (rtt_a > 0 ? rtt_a : 0) + (rtt_b > 0 ? rtt_b : 0);
	double jit = jit_b >= 0 ? jit_b : (jit_a > 0 ? jit_a : 0);
	double loss = loss_b >= 0 ? loss_b : (loss_a > 0 ? loss_a : 0);
	double r = emodel_r(rtt, jit, loss);
	/* the badge follows the MOS as shown (rounded to 0.01) */
	double mos = (double)(long long)(emodel_mos(r) * 100 + 0.5) / 100;
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:s, s:b}",
		"rtt_ms", num_or_null(rtt, 10), "jitter_ms", num_or_null(jit, 10),
		"loss_pct", num_or_null(loss, 100), "r", num_or_null(r, 10), "mos", num_or_null(mos, 100),
		"badge", quality_badge(mos), "complete", rtt_a >= 0 && rtt_b >= 0);
}

char *quality_context_json(const quality_visit *q, int seconds) {
	quality_sum agg[Q_LEGS][Q_MEDIA];
	memset(agg, 0, sizeof(agg));
	int64_t span = 0;
	if(seconds <= 0) {
		memcpy(agg, q->total, sizeof(agg));
	} else {
		/* the current bucket plus enough completed ones to cover `seconds` */
		int want = (int)((seconds * 1000000LL + Q_BUCKET_US - 1) / Q_BUCKET_US);
		int take = want < q->n ? want : q->n;
		for(int l = 0; l < Q_LEGS; l++)
			for(int m = 0; m < Q_MEDIA; m++)
				quality_sum_merge(&agg[l][m], &q->cur[l][m]);
		for(int k = 0; k < take; k++) {
			int slot = (q->head + q->n - 1 - k) % q->cap;
			const quality_sum *b = ring_at(q, slot);
			for(int l = 0; l < Q_LEGS; l++)
				for(int m = 0; m < Q_MEDIA; m++)
					quality_sum_merge(&agg[l][m], &b[l * Q_MEDIA + m]);
		}
	}
	for(int l = 0; l < Q_LEGS; l++)
		for(int m = 0; m < Q_MEDIA; m++)
			if(agg[l][m].dur_us > span)
				span = agg[l][m].dur_us;
	json_t *legs = json_object();
	int64_t freezes = 0, freeze_ms = 0;
	for(int l = 0; l < Q_LEGS; l++) {
		bool down = (l == Q_CLIENT_DOWN || l == Q_THERAPIST_DOWN);
		json_t *leg = json_object();
		for(int m = 0; m < Q_MEDIA; m++)
			if(agg[l][m].windows > 0)
				json_object_set_new(leg, m ? "video" : "audio", sum_json(&agg[l][m], m == 1, down));
		freezes += agg[l][1].freezes;
		freeze_ms += agg[l][1].freeze_ms;
		json_object_set_new(legs, quality_leg_name((quality_leg)l), leg);
	}
	json_t *paths = json_pack("{s:o, s:o}",
		"client_to_therapist", path_json(&agg[Q_CLIENT_UP][0], &agg[Q_CLIENT_DOWN][0], &agg[Q_THERAPIST_DOWN][0]),
		"therapist_to_client", path_json(&agg[Q_THERAPIST_UP][0], &agg[Q_THERAPIST_DOWN][0], &agg[Q_CLIENT_DOWN][0]));
	json_t *o = json_pack("{s:i, s:f, s:o, s:o, s:I, s:f, s:I}",
		"window_s", seconds, "measured_s", tenths(span / 1000),
		"legs", legs, "paths", paths, "freezes", (json_int_t)freezes,
		"freeze_s", tenths(freeze_ms), "incidents", (json_int_t)q->incidents_total);
	callclass_context(o);        /* class and poor_reasons per leg, video_class */
	char *t = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	json_decref(o);
	return t;
}

void quality_recent(const quality_visit *q, int seconds, quality_leg leg, int medium,
		quality_sum *out) {
	memset(out, 0, sizeof(*out));
	if(leg < 0 || leg >= Q_LEGS || medium < 0 || medium >= Q_MEDIA)
		return;
	quality_sum_merge(out, &q->cur[leg][medium]);
	int want = (int)((seconds * 1000000LL + Q_BUCKET_US - 1) / Q_BUCKET_US);
	int take = want < q->n ? want : q->n;
	for(int k = 0; k < take; k++) {
		int slot = (q->head + q->n - 1 - k) % q->cap;
		quality_sum_merge(out, &ring_at(q, slot)[leg * Q_MEDIA + medium]);
	}
}

const char *quality_badge(double mos) {
	if(mos >= 4.0)
		return "good";
	if(mos >= 3.1)
		return "fair";
	return "poor";
}

const char *quality_leg_name(quality_leg leg) {
	switch(leg) {
		case Q_CLIENT_UP: return "client_up";
		case Q_CLIENT_DOWN: return "client_down";
		case Q_THERAPIST_UP: return "therapist_up";
		case Q_THERAPIST_DOWN: return "therapist_down";
		default: return "unknown";
	}
}

const char *quality_incident_name(quality_incident_kind k) {
	switch(k) {
		case QI_FREEZE: return "freeze";
		case QI_LOSS_BURST: return "loss_burst";
		case QI_HIGH_RTT: return "high_rtt";
		case QI_STALL: return "stall";
		case QI_RECONNECT: return "reconnect";
		case QI_SLOW_LINK: return "slow_link";
	}
	return "unknown";
}
