/* Unit tests for pulse.c: the pulse scheduler, driven by a fake clock. */
#include <glib.h>
#include <string.h>
#include "pulse.h"

#define S 1000000LL
#define T0 (1700000000LL * S)

static void config(pulse_config *c, const int *offsets, int n) {
	memset(c, 0, sizeof(*c));
	for(int i = 0; i < n; i++)
		c->offsets_s[i] = offsets[i];
	c->n_offsets = n;
	c->expires_in_s = 120;
	c->end_grace_s = 180;
	c->end_pulse = true;
	g_strlcpy(c->in_session, "ap-pulse", sizeof(c->in_session));
	g_strlcpy(c->end, "ap-end", sizeof(c->end));
	g_strlcpy(c->therapist_end, "ap-therapist-end", sizeof(c->therapist_end));
}

static void test_schedule_offsets(void) {
	pulse_sched ps;
	pulse_config c;
	int offs[] = {600, 1800};
	config(&c, offs, 2);
	pulse_sched_init(&ps, "v1", &c);
	pulse_action a[8];
	/* nothing before live */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 3600 * S, true, a, 8), ==, 0);
	pulse_sched_live(&ps, T0);
	pulse_sched_live(&ps, T0 + 50 * S);   /* ignored: the first live counts */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 599 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 600 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_SEND);
	pulse *p = &ps.pulses[a[0].index];
	g_assert_cmpstr(p->id, ==, "v1-1");
	g_assert_cmpint(p->target, ==, VISIT_ROLE_CLIENT);
	g_assert_cmpint(p->kind, ==, PULSE_IN_SESSION);
	g_assert_cmpint(p->trigger, ==, PULSE_TRIGGER_SCHEDULE);
	g_assert_cmpstr(p->instrument, ==, "ap-pulse");
	g_assert_cmpint(p->expires_us, ==, T0 + 720 * S);
	/* no second pulse at the same time */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 601 * S, true, a, 8), ==, 0);
	/* it expires at exactly created + 120 s */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 719 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 720 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_EXPIRE);
	g_assert_cmpint(ps.pulses[a[0].index].status, ==, PULSE_EXPIRED);
	/* second offset */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 1800 * S, true, a, 8), ==, 1);
	g_assert_cmpstr(ps.pulses[a[0].index].id, ==, "v1-2");
	/* schedule exhausted */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 1801 * S, true, a, 8), ==, 0);
	pulse_sched_free(&ps);
}

static void test_absent_client_and_collapse(void) {
	pulse_sched ps;
	pulse_config c;
	int offs[] = {60, 120, 180, 900};
	config(&c, offs, 4);
	pulse_sched_init(&ps, "v2", &c);
	pulse_action a[8];
	pulse_sched_live(&ps, T0);
	/* the client is away while three offsets pass */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 200 * S, false, a, 8), ==, 0);
	/* back: one pulse, not three */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 201 * S, true, a, 8), ==, 1);
	g_assert_cmpint(ps.n, ==, 1);
	g_assert_cmpint(ps.next_offset, ==, 3);
	/* the 900 s offset waits while the earlier pulse is still open */
	int i = a[0].index;
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 320 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 321 * S, true, a, 8), ==, 1);   /* 201 + 120 */
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_EXPIRE);
	g_assert_cmpint(a[0].index, ==, i);
	/* the last offset */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 899 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 900 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_SEND);
	g_assert_cmpstr(ps.pulses[a[0].index].id, ==, "v2-2");
	pulse_sched_free(&ps);
}

static void test_trigger_rules(void) {
	pulse_sched ps;
	pulse_config c;
	config(&c, NULL, 0);
	pulse_sched_init(&ps, "v3", &c);
	int idx;
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0, &idx), ==, PULSE_ERR_NOT_LIVE);
	pulse_sched_live(&ps, T0);
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + S, &idx), ==, PULSE_OK);
	g_assert_cmpstr(ps.pulses[idx].instrument, ==, "ap-pulse");
	g_assert_cmpint(ps.pulses[idx].trigger, ==, PULSE_TRIGGER_THERAPIST);
	int again;
	/* never two open for one participant */
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + 2 * S, &again), ==, PULSE_ERR_PENDING);
	g_assert_cmpint(again, ==, -1);
	/* but one for the therapist is fine, with its own instrument */
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_THERAPIST, "ap-tech", PULSE_TRIGGER_THERAPIST, T0 + 2 * S, &again), ==, PULSE_OK);
	g_assert_cmpstr(ps.pulses[again].instrument, ==, "ap-tech");
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_OBSERVER, NULL, PULSE_TRIGGER_THERAPIST, T0, &again), ==, PULSE_ERR_NOT_YOURS);
	/* a partial answer keeps it open */
	pulse_sched_mark(&ps, idx, PULSE_PARTIAL, T0 + 3 * S);
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + 4 * S, &again), ==, PULSE_ERR_PENDING);
	/* once answered, a new one may go */
	pulse_sched_mark(&ps, idx, PULSE_ANSWERED, T0 + 5 * S);
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + 6 * S, &again), ==, PULSE_OK);
	pulse_sched_free(&ps);
}

static void test_answer_checks(void) {
	pulse_sched ps;
	pulse_config c;
	config(&c, NULL, 0);
	pulse_sched_init(&ps, "v4", &c);
	pulse_sched_live(&ps, T0);
	int idx, got;
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0, &idx), ==, PULSE_OK);
	const char *id = ps.pulses[idx].id;
	g_assert_cmpint(pulse_sched_check(&ps, id, VISIT_ROLE_CLIENT, T0 + S, &got), ==, PULSE_OK);
	g_assert_cmpint(got, ==, idx);
	g_assert_cmpint(pulse_sched_check(&ps, id, VISIT_ROLE_THERAPIST, T0 + S, &got), ==, PULSE_ERR_NOT_YOURS);
	g_assert_cmpint(pulse_sched_check(&ps, "v4-99", VISIT_ROLE_CLIENT, T0 + S, &got), ==, PULSE_ERR_UNKNOWN);
	g_assert_cmpint(pulse_sched_check(&ps, NULL, VISIT_ROLE_CLIENT, T0 + S, &got), ==, PULSE_ERR_UNKNOWN);
	/* expiry is checked against now even before a tick marks it */
	g_assert_cmpint(pulse_sched_check(&ps, id, VISIT_ROLE_CLIENT, T0 + 120 * S, &got), ==, PULSE_ERR_EXPIRED);
	g_assert_cmpint(pulse_sched_check(&ps, id, VISIT_ROLE_CLIENT, T0 + 119 * S, &got), ==, PULSE_OK);
	pulse_sched_mark(&ps, idx, PULSE_ANSWERED, T0 + 10 * S);
	g_assert_cmpint(pulse_sched_check(&ps, id, VISIT_ROLE_CLIENT, T0 + 11 * S, &got), ==, PULSE_ERR_ALREADY_ANSWERED);
	/* final states are final */
	pulse_sched_mark(&ps, idx, PULSE_DISMISSED, T0 + 12 * S);
	g_assert_cmpint(ps.pulses[idx].status, ==, PULSE_ANSWERED);
	pulse_sched_mark(&ps, idx, PULSE_EXPIRED, T0 + 12 * S);
	g_assert_cmpint(ps.pulses[idx].status, ==, PULSE_ANSWERED);
	pulse_sched_mark(&ps, 999, PULSE_ANSWERED, T0);   /* out of range: ignored */
	pulse_sched_mark(&ps, -1, PULSE_ANSWERED, T0);
	pulse_sched_free(&ps);
}

static void test_end_pulses_and_grace(void) {
	pulse_sched ps;
	pulse_config c;
	int offs[] = {60};
	config(&c, offs, 1);
	pulse_sched_init(&ps, "v5", &c);
	pulse_sched_live(&ps, T0);
	pulse_action a[8];
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 60 * S, true, a, 8), ==, 1);
	int open = a[0].index;
	int expired[PULSE_IN_SESSION_MAX + 2], created[2], ne, nc;
	pulse_sched_end(&ps, T0 + 100 * S, true, expired, &ne, created, &nc);
	g_assert_cmpint(ne, ==, 1);
	g_assert_cmpint(expired[0], ==, open);
	g_assert_cmpint(nc, ==, 2);
	pulse *cp = &ps.pulses[created[0]], *tp = &ps.pulses[created[1]];
	g_assert_cmpint(cp->target, ==, VISIT_ROLE_CLIENT);
	g_assert_cmpstr(cp->instrument, ==, "ap-end");
	g_assert_cmpint(cp->kind, ==, PULSE_END);
	g_assert_cmpint(tp->target, ==, VISIT_ROLE_THERAPIST);
	g_assert_cmpstr(tp->instrument, ==, "ap-therapist-end");
	g_assert_cmpint(cp->expires_us, ==, T0 + 280 * S);
	/* a second end changes nothing */
	pulse_sched_end(&ps, T0 + 101 * S, true, expired, &ne, created, &nc);
	g_assert_cmpint(ne + nc, ==, 0);
	/* no in-session pulses after end */
	int idx;
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + 102 * S, &idx), ==, PULSE_ERR_ENDED);
	/* the client was away: the end pulse is undelivered, found on re-join */
	int und[4];
	g_assert_cmpint(pulse_sched_undelivered(&ps, VISIT_ROLE_CLIENT, und, 4), ==, 1);
	pulse_sched_delivered(&ps, und[0], T0 + 150 * S);
	g_assert_cmpint(pulse_sched_undelivered(&ps, VISIT_ROLE_CLIENT, und, 4), ==, 0);
	g_assert_true(pulse_sched_any_open(&ps, T0 + 279 * S));
	/* answerable 10 s after the end, and up to the grace */
	g_assert_cmpint(pulse_sched_check(&ps, cp->id, VISIT_ROLE_CLIENT, T0 + 110 * S, &idx), ==, PULSE_OK);
	g_assert_cmpint(pulse_sched_check(&ps, cp->id, VISIT_ROLE_CLIENT, T0 + 280 * S, &idx), ==, PULSE_ERR_EXPIRED);
	g_assert_false(pulse_sched_any_open(&ps, T0 + 280 * S));
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 280 * S, true, a, 8), ==, 2);
	pulse_sched_free(&ps);
}

static void test_no_end_pulse_and_capacity(void) {
	pulse_sched ps;
	pulse_config c;
	config(&c, NULL, 0);
	c.end_pulse = false;
	pulse_sched_init(&ps, "v6", &c);
	pulse_sched_live(&ps, T0);
	int idx;
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0, &idx), ==, PULSE_OK);
	pulse_sched_mark(&ps, idx, PULSE_DISMISSED, T0);
	int expired[PULSE_IN_SESSION_MAX + 2], created[2], ne, nc;
	pulse_sched_end(&ps, T0 + 2 * S, true, expired, &ne, created, &nc);
	g_assert_cmpint(nc, ==, 0);              /* end_pulse:false */
	g_assert_cmpint(ne, ==, 0);
	pulse_sched_free(&ps);
}

/* However many in-session pulses a visit had, its end pulses go out (the
 * old fixed array of 64 silently dropped them). */
static void test_capacity_keeps_end_pulses(void) {
	pulse_sched ps;
	pulse_config c;
	config(&c, NULL, 0);
	pulse_sched_init(&ps, "v7", &c);
	pulse_sched_live(&ps, T0);
	int idx;
	for(int i = 0; i < PULSE_IN_SESSION_MAX; i++) {
		g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + i, &idx), ==, PULSE_OK);
		pulse_sched_mark(&ps, idx, PULSE_DISMISSED, T0 + i);
	}
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + S, &idx), ==, PULSE_ERR_FULL);
	g_assert_cmpint(idx, ==, -1);
	int expired[PULSE_IN_SESSION_MAX + 2], created[2], ne, nc;
	pulse_sched_end(&ps, T0 + 2 * S, true, expired, &ne, created, &nc);
	g_assert_cmpint(nc, ==, 2);
	g_assert_cmpint(ps.pulses[created[0]].kind, ==, PULSE_END);
	g_assert_cmpstr(ps.pulses[created[1]].id, ==, "v7-1002");
	/* the same without end pulses (an idle close): none created */
	pulse_sched ps2;
	pulse_sched_init(&ps2, "v8", &c);
	pulse_sched_live(&ps2, T0);
	pulse_sched_end(&ps2, T0 + 2 * S, false, expired, &ne, created, &nc);
	g_assert_cmpint(nc, ==, 0);
	pulse_sched_free(&ps);
	pulse_sched_free(&ps2);
}

/* An answer in flight holds the pulse's expiry (and `end`) until the store
 * has spoken: committed -> answered, never expired; failed -> expired. */
static void test_inflight_answer_holds_expiry(void) {
	pulse_sched ps;
	pulse_config c;
	config(&c, NULL, 0);
	c.expires_in_s = 10;
	pulse_sched_init(&ps, "v9", &c);
	pulse_sched_live(&ps, T0);
	int idx, chk;
	pulse_action a[8];
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0, &idx), ==, PULSE_OK);
	g_assert_cmpint(pulse_sched_check(&ps, ps.pulses[idx].id, VISIT_ROLE_CLIENT, T0 + 9 * S, &chk), ==, PULSE_OK);
	pulse_sched_begin(&ps, idx);
	/* the expiry passes while the write is queued: no expiry action */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 11 * S, true, a, 8), ==, 0);
	g_assert_cmpint(ps.pulses[idx].status, ==, PULSE_OPEN);
	/* nothing else is accepted meanwhile */
	g_assert_cmpint(pulse_sched_check(&ps, ps.pulses[idx].id, VISIT_ROLE_CLIENT, T0 + 11 * S, &chk), ==, PULSE_ERR_EXPIRED);
	/* committed: answered, and it does not expire afterwards */
	g_assert_false(pulse_sched_settle(&ps, idx, PULSE_ANSWERED, T0 + 12 * S));
	g_assert_cmpint(ps.pulses[idx].status, ==, PULSE_ANSWERED);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 13 * S, true, a, 8), ==, 0);
	/* a second pulse whose write fails: it expires when the failure is known */
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + 20 * S, &idx), ==, PULSE_OK);
	pulse_sched_begin(&ps, idx);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 31 * S, true, a, 8), ==, 0);
	g_assert_true(pulse_sched_settle(&ps, idx, PULSE_OPEN, T0 + 32 * S));
	g_assert_cmpint(ps.pulses[idx].status, ==, PULSE_EXPIRED);
	/* a partial answer committed after the expiry: stored, then expired */
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + 40 * S, &idx), ==, PULSE_OK);
	pulse_sched_begin(&ps, idx);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 51 * S, true, a, 8), ==, 0);
	g_assert_true(pulse_sched_settle(&ps, idx, PULSE_PARTIAL, T0 + 52 * S));
	/* `end` while an answer is in flight: the pulse waits for it */
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, NULL, PULSE_TRIGGER_THERAPIST, T0 + 60 * S, &idx), ==, PULSE_OK);
	pulse_sched_begin(&ps, idx);
	int expired[8], created[2], ne, nc;
	pulse_sched_end(&ps, T0 + 61 * S, true, expired, &ne, created, &nc);
	g_assert_cmpint(ne, ==, 0);
	g_assert_cmpint(nc, ==, 2);
	g_assert_false(pulse_sched_settle(&ps, idx, PULSE_ANSWERED, T0 + 62 * S));
	g_assert_cmpint(ps.pulses[idx].status, ==, PULSE_ANSWERED);
	/* settle out of range is harmless */
	g_assert_false(pulse_sched_settle(&ps, 99999, PULSE_ANSWERED, T0));
	pulse_sched_free(&ps);
}

static void test_names(void) {
	g_assert_cmpstr(pulse_result_slug(PULSE_ERR_UNKNOWN), ==, "unknown_pulse");
	g_assert_cmpstr(pulse_result_slug(PULSE_ERR_ALREADY_ANSWERED), ==, "already_answered");
	g_assert_cmpstr(pulse_result_slug(PULSE_ERR_EXPIRED), ==, "expired");
	g_assert_cmpstr(pulse_status_name(PULSE_PARTIAL), ==, "partial");
	g_assert_cmpstr(pulse_kind_name(PULSE_END), ==, "end");
	g_assert_cmpstr(pulse_trigger_name(PULSE_TRIGGER_QUALITY), ==, "quality");
}

/* A frozen picture: a scheduled pulse due while the client's incoming
 * video is not stable is held, released once the video has been stable
 * for hold_stable_s, or skipped after hold_max_s; the therapist's and the
 * quality-triggered pulses are never held. */
static void test_hold_for_stable_video(void) {
	pulse_sched ps;
	pulse_config c;
	int offs[] = {60, 300, 320, 900};
	config(&c, offs, 4);
	c.hold_stable_s = 3;
	c.hold_max_s = 30;
	pulse_sched_init(&ps, "vh", &c);
	pulse_action a[8];
	pulse_sched_live(&ps, T0);
	/* the video freezes at 58 s: the pulse due at 60 s is held */
	pulse_sched_media(&ps, PULSE_MEDIA_UNSTABLE);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 59 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 60 * S, true, a, 8), ==, 0);
	g_assert_cmpint(ps.held_since_us, ==, T0 + 60 * S);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 70 * S, true, a, 8), ==, 0);
	g_assert_cmpint(ps.n, ==, 0);
	/* the therapist's own pulse is not held, nor the technology item */
	int ti;
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_THERAPIST, NULL, PULSE_TRIGGER_THERAPIST,
		T0 + 70 * S, &ti), ==, PULSE_OK);
	g_assert_cmpint(ps.pulses[ti].held_us, ==, 0);
	g_assert_cmpint(pulse_sched_trigger(&ps, VISIT_ROLE_CLIENT, "ap-tech", PULSE_TRIGGER_QUALITY,
		T0 + 71 * S, &ti), ==, PULSE_OK);
	g_assert_cmpstr(ps.pulses[ti].instrument, ==, "ap-tech");
	g_assert_cmpint(ps.pulses[ti].trigger, ==, PULSE_TRIGGER_QUALITY);
	/* ... and it is answered; the held scheduled pulse still waits */
	pulse_sched_mark(&ps, ti, PULSE_ANSWERED, T0 + 75 * S);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 76 * S, true, a, 8), ==, 0);
	/* the video is back at 80 s: stable for 3 s is needed */
	pulse_sched_media(&ps, T0 + 80 * S);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 82 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 83 * S - 1, true, a, 8), ==, 0);
	/* a new freeze before the 3 s are up starts the count again */
	pulse_sched_media(&ps, PULSE_MEDIA_UNSTABLE);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 84 * S, true, a, 8), ==, 0);
	pulse_sched_media(&ps, T0 + 85 * S);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 87 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 88 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_SEND);
	pulse *p = &ps.pulses[a[0].index];
	g_assert_cmpint(p->trigger, ==, PULSE_TRIGGER_SCHEDULE);
	g_assert_cmpint(p->held_us, ==, 28 * S);          /* held from 60 s to 88 s */
	g_assert_cmpint(p->created_us, ==, T0 + 88 * S);
	g_assert_cmpint(ps.held_since_us, ==, 0);
	pulse_sched_mark(&ps, a[0].index, PULSE_ANSWERED, T0 + 90 * S);
	/* the therapist's pulse of 70 s expires at 190 s */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 190 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_EXPIRE);

	/* 300 s and 320 s: frozen from 299 s on; skipped after 30 s (both
	 * offsets in one skip), no pulse created */
	pulse_sched_media(&ps, PULSE_MEDIA_UNSTABLE);
	int before = ps.n;
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 300 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 329 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 330 * S - 1, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 330 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_SKIP);
	g_assert_cmpint(a[0].index, ==, -1);
	g_assert_cmpint(a[0].offset_s, ==, 300);
	g_assert_cmpint(a[0].n_offsets, ==, 2);
	g_assert_cmpint(a[0].held_us, ==, 30 * S);
	g_assert_cmpint(ps.n, ==, before);
	g_assert_cmpint(ps.n_skipped, ==, 1);
	g_assert_cmpint(ps.next_offset, ==, 3);
	/* nothing more until 900 s; then (stable again) it goes out at once */
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 331 * S, true, a, 8), ==, 0);
	pulse_sched_media(&ps, T0 + 500 * S);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 900 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_SEND);
	g_assert_cmpint(ps.pulses[a[0].index].held_us, ==, 0);
	pulse_sched_free(&ps);

	/* hold_stable_s 0: nothing is held, even while frozen */
	config(&c, offs, 1);
	pulse_sched_init(&ps, "vh2", &c);
	pulse_sched_live(&ps, T0);
	pulse_sched_media(&ps, PULSE_MEDIA_UNSTABLE);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 60 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_SEND);
	pulse_sched_free(&ps);

	/* no bound (hold_max_s 0): held as long as the video is unstable; an
	 * absent client is not a reason to start the hold */
	config(&c, offs, 1);
	c.hold_stable_s = 2;
	pulse_sched_init(&ps, "vh3", &c);
	pulse_sched_live(&ps, T0);
	pulse_sched_media(&ps, PULSE_MEDIA_UNSTABLE);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 60 * S, false, a, 8), ==, 0);
	g_assert_cmpint(ps.held_since_us, ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 61 * S, true, a, 8), ==, 0);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 3600 * S, true, a, 8), ==, 0);
	pulse_sched_media(&ps, T0 + 3600 * S);
	g_assert_cmpint(pulse_sched_tick(&ps, T0 + 3602 * S, true, a, 8), ==, 1);
	g_assert_cmpint(ps.pulses[a[0].index].held_us, ==, 3541 * S);
	pulse_sched_free(&ps);

	/* never told about the media: stable all along */
	config(&c, offs, 1);
	c.hold_stable_s = 5;
	pulse_sched_init(&ps, "vh4", &c);
	pulse_sched_live(&ps, 1 * S);
	g_assert_cmpint(pulse_sched_tick(&ps, 61 * S, true, a, 8), ==, 1);
	g_assert_cmpint(a[0].type, ==, PULSE_ACT_SEND);
	pulse_sched_free(&ps);
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/pulse/schedule-offsets", test_schedule_offsets);
	g_test_add_func("/pulse/absent-and-collapse", test_absent_client_and_collapse);
	g_test_add_func("/pulse/trigger-rules", test_trigger_rules);
	g_test_add_func("/pulse/answer-checks", test_answer_checks);
	g_test_add_func("/pulse/end-and-grace", test_end_pulses_and_grace);
	g_test_add_func("/pulse/no-end-pulse", test_no_end_pulse_and_capacity);
	g_test_add_func("/pulse/capacity-keeps-end-pulses", test_capacity_keeps_end_pulses);
	g_test_add_func("/pulse/inflight-answer-holds-expiry", test_inflight_answer_holds_expiry);
	g_test_add_func("/pulse/names", test_names);
	g_test_add_func("/pulse/hold-for-stable-video", test_hold_for_stable_video);
	return g_test_run();
}
