/* Unit tests for visit.c: the visit state machine and its refusals. */
#include <glib.h>
#include <string.h>
#include "visit.h"

#define INVITE "invite-token-abcdefghijklmnopqrstuv"
#define INVITE2 "second-invite-abcdefghijklmnopqrs"
#define REJOIN "rejoin-token-abcdefghijklmnopqrstuv"

static void fresh(visit *v) {
	auth_digest d;
	auth_digest_of(INVITE, &d);
	visit_init(v, "visit-1", "T-01", "C-0042", VISIT_MODALITY_VIDEO, &d, 1000);
}

static bool takeover;     /* what the last join said */
#define join_therapist(v, code) visit_join_therapist((v), (code), &takeover)
#define join_client(v, inv, rj, consent, first) visit_join_client((v), (inv), (rj), (consent), (first), &takeover)

/* A refused transition must leave every byte of the visit unchanged. */
#define ASSERT_REFUSED(v, call, expected) do { \
	visit before_ = *(v); \
	g_assert_cmpint((call), ==, (expected)); \
	g_assert_cmpint(memcmp(&before_, (v), sizeof(visit)), ==, 0); \
} while(0)

static void test_happy_path(void) {
	visit v;
	fresh(&v);
	g_assert_cmpint(v.state, ==, VISIT_CREATED);
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_true(v.therapist_present);
	bool first = false;
	g_assert_cmpint(join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	g_assert_true(first);
	auth_digest r;
	auth_digest_of(REJOIN, &r);
	visit_set_rejoin(&v, &r);
	g_assert_cmpint(v.state, ==, VISIT_WAITING);
	g_assert_false(visit_relaying(&v));
	g_assert_cmpint(visit_may_configure(&v, VISIT_ROLE_CLIENT), ==, VISIT_ERR_NOT_ADMITTED);
	g_assert_cmpint(visit_may_configure(&v, VISIT_ROLE_THERAPIST), ==, VISIT_OK);
	g_assert_cmpint(visit_admit(&v, VISIT_ROLE_THERAPIST, 5000), ==, VISIT_OK);
	g_assert_cmpint(v.state, ==, VISIT_LIVE);
	g_assert_cmpint(v.admitted_at_us, ==, 5000);
	g_assert_true(visit_relaying(&v));
	g_assert_cmpint(visit_may_configure(&v, VISIT_ROLE_CLIENT), ==, VISIT_OK);
	/* client drops and comes back with the re-join key: straight to live */
	visit_leave(&v, VISIT_ROLE_CLIENT, 100);
	g_assert_false(visit_relaying(&v));
	g_assert_cmpint(join_client(&v, INVITE, REJOIN, false, &first), ==, VISIT_OK);
	g_assert_false(first);
	g_assert_cmpint(v.state, ==, VISIT_LIVE);
	g_assert_false(v.research_consent);      /* the latest answer counts */
	g_assert_true(visit_relaying(&v));
	g_assert_cmpint(visit_end(&v, VISIT_ROLE_THERAPIST, 9000), ==, VISIT_OK);
	g_assert_cmpint(v.state, ==, VISIT_ENDED);
	g_assert_cmpint(v.ended_at_us, ==, 9000);
	g_assert_false(visit_relaying(&v));
	visit_close(&v, VISIT_END_SHUTDOWN, 10000);
	g_assert_cmpint(v.state, ==, VISIT_CLOSED);
	g_assert_false(v.therapist_present || v.client_present);
	/* closed after the therapist's end: that stays the reason */
	g_assert_cmpint(v.end_reason, ==, VISIT_END_THERAPIST);
	g_assert_cmpint(v.ended_at_us, ==, 9000);
}

/* A new invite: the old one and the old re-join key stop working; the new
 * one is a first join that takes the seat of a client still present. */
static void test_reinvite(void) {
	visit v;
	fresh(&v);
	bool first;
	auth_digest r, d2;
	auth_digest_of(REJOIN, &r);
	auth_digest_of(INVITE2, &d2);
	g_assert_cmpint(join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	visit_set_rejoin(&v, &r);
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_cmpint(visit_admit(&v, VISIT_ROLE_THERAPIST, 5), ==, VISIT_OK);
	ASSERT_REFUSED(&v, visit_reinvite(&v, VISIT_ROLE_CLIENT, &d2), VISIT_ERR_FORBIDDEN);
	g_assert_cmpint(visit_reinvite(&v, VISIT_ROLE_THERAPIST, &d2), ==, VISIT_OK);
	ASSERT_REFUSED(&v, join_client(&v, INVITE, REJOIN, true, &first), VISIT_ERR_INVALID_INVITE);
	g_assert_cmpint(join_client(&v, INVITE2, NULL, false, &first), ==, VISIT_OK);
	g_assert_true(first);
	g_assert_true(takeover);                 /* the old tab still held the seat */
	g_assert_cmpint(v.state, ==, VISIT_LIVE);  /* admitted once, admitted for good */
	g_assert_false(v.research_consent);      /* asked again at this join */
	g_assert_cmpint(visit_end(&v, VISIT_ROLE_THERAPIST, 9), ==, VISIT_OK);
	ASSERT_REFUSED(&v, visit_reinvite(&v, VISIT_ROLE_THERAPIST, &r), VISIT_ERR_WRONG_STATE);
}

/* Idle: nobody present for idle_us; age: not ended and older than max_us;
 * the plugin's own ends and the reasons a close keeps. */
static void test_idle_age_and_end_reasons(void) {
	visit v;
	fresh(&v);                                /* created at 1000, nobody there */
	g_assert_false(visit_idle_due(&v, 1500, 1000));
	g_assert_true(visit_idle_due(&v, 2000, 1000));
	g_assert_false(visit_idle_due(&v, 2000, 0));           /* 0 = never */
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_false(visit_idle_due(&v, 99999, 1000));        /* someone is there */
	visit_leave(&v, VISIT_ROLE_THERAPIST, 5000);
	g_assert_false(visit_idle_due(&v, 5999, 1000));
	g_assert_true(visit_idle_due(&v, 6000, 1000));
	bool first;
	g_assert_cmpint(join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	g_assert_false(visit_idle_due(&v, 99999, 1000));
	/* observers do not count as someone being there */
	visit_leave(&v, VISIT_ROLE_CLIENT, 7000);
	g_assert_true(visit_idle_due(&v, 8000, 1000));
	g_assert_false(visit_age_due(&v, 1999, 1000));
	g_assert_true(visit_age_due(&v, 2000, 1000));
	g_assert_false(visit_age_due(&v, 2000, 0));
	ASSERT_REFUSED(&v, visit_end_by(&v, VISIT_END_NONE, 3000), VISIT_ERR_WRONG_STATE);
	g_assert_cmpint(visit_end_by(&v, VISIT_END_MAX_DURATION, 3000), ==, VISIT_OK);
	g_assert_cmpint(v.end_reason, ==, VISIT_END_MAX_DURATION);
	g_assert_false(visit_age_due(&v, 99999, 1000));         /* ended: no second end */
	ASSERT_REFUSED(&v, visit_end_by(&v, VISIT_END_IDLE, 3001), VISIT_ERR_WRONG_STATE);
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_THERAPIST, 3001), VISIT_ERR_WRONG_STATE);
	visit_close(&v, VISIT_END_SHUTDOWN, 4000);
	g_assert_cmpint(v.end_reason, ==, VISIT_END_MAX_DURATION);   /* why it ended stays */
	g_assert_cmpint(v.ended_at_us, ==, 3000);
	g_assert_false(visit_idle_due(&v, 99999, 1));            /* closed */
	/* a visit closed without having ended ends then, for that reason */
	fresh(&v);
	visit_close(&v, VISIT_END_SHUTDOWN, 4000);
	g_assert_cmpint(v.state, ==, VISIT_CLOSED);
	g_assert_cmpint(v.end_reason, ==, VISIT_END_SHUTDOWN);
	g_assert_cmpint(v.ended_at_us, ==, 4000);
	g_assert_cmpstr(visit_end_reason_name(VISIT_END_INTERRUPTED), ==, "interrupted");
	g_assert_cmpstr(visit_end_reason_name(VISIT_END_IDLE), ==, "idle");
	g_assert_null(visit_end_reason_name(VISIT_END_NONE));
}

/* Who watches: observers only with consent, at most VISIT_OBSERVERS_MAX,
 * and they receive media only while the visit is live and consent stands. */
static void test_observers(void) {
	visit v;
	fresh(&v);
	bool first;
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_cmpint(join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	auth_digest r;
	auth_digest_of(REJOIN, &r);
	visit_set_rejoin(&v, &r);
	g_assert_false(visit_observed(&v));              /* nobody watches yet */
	for(int i = 0; i < VISIT_OBSERVERS_MAX; i++)
		g_assert_cmpint(visit_join_observer(&v), ==, VISIT_OK);
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_FULL);
	g_assert_false(visit_observed(&v));              /* waiting room: not live yet */
	g_assert_cmpint(visit_may_configure(&v, VISIT_ROLE_OBSERVER), ==, VISIT_OK);
	g_assert_cmpint(visit_admit(&v, VISIT_ROLE_THERAPIST, 2), ==, VISIT_OK);
	g_assert_true(visit_observed(&v));
	/* one participant away: the other is still watched */
	visit_leave(&v, VISIT_ROLE_CLIENT, 3);
	g_assert_true(visit_observed(&v));
	/* the client back without consent: nothing more to see */
	g_assert_cmpint(join_client(&v, INVITE, REJOIN, false, &first), ==, VISIT_OK);
	g_assert_false(visit_observed(&v));
	g_assert_cmpint(join_client(&v, INVITE, REJOIN, true, &first), ==, VISIT_OK);
	g_assert_true(visit_observed(&v));
	for(int i = 0; i < VISIT_OBSERVERS_MAX; i++)
		visit_leave(&v, VISIT_ROLE_OBSERVER, 4);
	g_assert_false(visit_observed(&v));
	g_assert_cmpint(visit_join_observer(&v), ==, VISIT_OK);   /* a seat is free again */
	g_assert_cmpint(visit_end(&v, VISIT_ROLE_THERAPIST, 5), ==, VISIT_OK);
	g_assert_false(visit_observed(&v));              /* the relay stops at the end */
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_OBSERVER), VISIT_ERR_WRONG_STATE);
}

static void test_refusals_change_nothing(void) {
	visit v;
	fresh(&v);
	bool first;
	ASSERT_REFUSED(&v, join_therapist(&v, "T-02"), VISIT_ERR_UNAUTHORIZED);
	ASSERT_REFUSED(&v, join_therapist(&v, NULL), VISIT_ERR_UNAUTHORIZED);
	ASSERT_REFUSED(&v, join_client(&v, "wrong-invite-abcdefghijklmnop", NULL, true, &first), VISIT_ERR_INVALID_INVITE);
	ASSERT_REFUSED(&v, join_client(&v, NULL, NULL, true, &first), VISIT_ERR_INVALID_INVITE);
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_THERAPIST, 1), VISIT_ERR_WRONG_STATE);
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_NO_CONSENT);
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	/* the same therapist again: a takeover, never a refusal */
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_true(takeover);
	g_assert_cmpint(join_client(&v, INVITE, NULL, false, &first), ==, VISIT_OK);
	g_assert_false(takeover);
	auth_digest r;
	auth_digest_of(REJOIN, &r);
	visit_set_rejoin(&v, &r);
	/* a second client with the same invite: used */
	ASSERT_REFUSED(&v, join_client(&v, INVITE, NULL, true, &first), VISIT_ERR_INVITE_USED);
	ASSERT_REFUSED(&v, join_client(&v, INVITE, "not-the-rejoin-key-abcdefgh", true, &first), VISIT_ERR_INVITE_USED);
	/* the right re-join key while the client is still present: a takeover */
	g_assert_cmpint(join_client(&v, INVITE, REJOIN, false, &first), ==, VISIT_OK);
	g_assert_true(takeover);
	g_assert_false(first);
	/* no research consent: no observers */
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_NO_CONSENT);
	/* the client may not admit or end */
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_CLIENT, 1), VISIT_ERR_FORBIDDEN);
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_CLIENT, 1), VISIT_ERR_FORBIDDEN);
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_OBSERVER, 1), VISIT_ERR_FORBIDDEN);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_CLIENT), VISIT_ERR_NOT_ADMITTED);
	/* an observer's receive-only PeerConnection may be set up any time before the end */
	g_assert_cmpint(visit_may_configure(&v, VISIT_ROLE_OBSERVER), ==, VISIT_OK);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_NONE), VISIT_ERR_FORBIDDEN);
	g_assert_cmpint(visit_admit(&v, VISIT_ROLE_THERAPIST, 2), ==, VISIT_OK);
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_THERAPIST, 3), VISIT_ERR_WRONG_STATE);
	g_assert_cmpint(visit_end(&v, VISIT_ROLE_THERAPIST, 4), ==, VISIT_OK);
	/* after end: no media, no admission, no second end, no observers... */
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_THERAPIST, 5), VISIT_ERR_WRONG_STATE);
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_THERAPIST, 6), VISIT_ERR_WRONG_STATE);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_THERAPIST), VISIT_ERR_WRONG_STATE);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_CLIENT), VISIT_ERR_WRONG_STATE);
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_WRONG_STATE);
	/* ...but the client may come back within the grace, and stays ENDED */
	visit_leave(&v, VISIT_ROLE_CLIENT, 100);
	g_assert_cmpint(join_client(&v, INVITE, REJOIN, true, &first), ==, VISIT_OK);
	g_assert_cmpint(v.state, ==, VISIT_ENDED);
	g_assert_false(visit_relaying(&v));
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_true(takeover);
	visit_leave(&v, VISIT_ROLE_THERAPIST, 100);
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	/* closed: nothing at all */
	visit_close(&v, VISIT_END_SHUTDOWN, 10000);
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_THERAPIST, 7), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, join_therapist(&v, "T-01"), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, join_client(&v, INVITE, REJOIN, true, &first), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_THERAPIST, 8), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_THERAPIST), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_CLOSED);
}

static void test_client_first_then_therapist(void) {
	visit v;
	fresh(&v);
	bool first;
	g_assert_cmpint(join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	g_assert_cmpint(v.state, ==, VISIT_WAITING);
	/* admit needs a therapist role, not presence: the therapist joins then admits */
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_cmpint(visit_admit(&v, VISIT_ROLE_THERAPIST, 7), ==, VISIT_OK);
	/* observers are allowed with consent */
	g_assert_cmpint(visit_join_observer(&v), ==, VISIT_OK);
	g_assert_cmpint(v.observers, ==, 1);
	visit_leave(&v, VISIT_ROLE_OBSERVER, 100);
	visit_leave(&v, VISIT_ROLE_OBSERVER, 100);   /* never below zero */
	g_assert_cmpint(v.observers, ==, 0);
}

static void test_waiting_client_leaves(void) {
	visit v;
	fresh(&v);
	bool first;
	g_assert_cmpint(join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_cmpint(join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	visit_leave(&v, VISIT_ROLE_CLIENT, 100);
	/* nobody to admit */
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_THERAPIST, 1), VISIT_ERR_WRONG_STATE);
}

static void test_names(void) {
	g_assert_cmpstr(visit_state_name(VISIT_CREATED), ==, "created");
	g_assert_cmpstr(visit_state_name(VISIT_WAITING), ==, "waiting");
	g_assert_cmpstr(visit_state_name(VISIT_LIVE), ==, "live");
	g_assert_cmpstr(visit_state_name(VISIT_ENDED), ==, "ended");
	g_assert_cmpstr(visit_state_name(VISIT_CLOSED), ==, "closed");
	g_assert_cmpstr(visit_role_name(VISIT_ROLE_CLIENT), ==, "client");
	g_assert_cmpstr(visit_role_name(VISIT_ROLE_THERAPIST), ==, "therapist");
	g_assert_cmpstr(visit_role_name(VISIT_ROLE_OBSERVER), ==, "observer");
	g_assert_cmpstr(visit_modality_name(VISIT_MODALITY_IN_PERSON), ==, "in_person");
	g_assert_cmpstr(visit_modality_name(VISIT_MODALITY_VIDEO), ==, "video");
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/visit/happy-path", test_happy_path);
	g_test_add_func("/visit/refusals-change-nothing", test_refusals_change_nothing);
	g_test_add_func("/visit/observers", test_observers);
	g_test_add_func("/visit/client-first", test_client_first_then_therapist);
	g_test_add_func("/visit/waiting-client-leaves", test_waiting_client_leaves);
	g_test_add_func("/visit/names", test_names);
	g_test_add_func("/visit/reinvite", test_reinvite);
	g_test_add_func("/visit/idle-age-end-reasons", test_idle_age_and_end_reasons);
	return g_test_run();
}
