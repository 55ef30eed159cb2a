/* Unit tests for visit.c: the visit state machine and its refusals. */
#include <glib.h>
#include <string.h>
#include "visit.h"

#define INVITE "invite-token-abcdefghijklmnopqrstuv"
#define REJOIN "rejoin-token-abcdefghijklmnopqrstuv"

static void fresh(visit *v) {
	auth_digest d;
	auth_digest_of(INVITE, &d);
	visit_init(v, "visit-1", "T-01", "C-0042", VISIT_MODALITY_VIDEO, &d, 1000);
}

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
	g_assert_cmpint(visit_join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_true(v.therapist_present);
	bool first = false;
	g_assert_cmpint(visit_join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
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
	visit_leave(&v, VISIT_ROLE_CLIENT);
	g_assert_false(visit_relaying(&v));
	g_assert_cmpint(visit_join_client(&v, INVITE, REJOIN, false, &first), ==, VISIT_OK);
	g_assert_false(first);
	g_assert_cmpint(v.state, ==, VISIT_LIVE);
	g_assert_false(v.research_consent);      /* the latest answer counts */
	g_assert_true(visit_relaying(&v));
	g_assert_cmpint(visit_end(&v, VISIT_ROLE_THERAPIST, 9000), ==, VISIT_OK);
	g_assert_cmpint(v.state, ==, VISIT_ENDED);
	g_assert_cmpint(v.ended_at_us, ==, 9000);
	g_assert_false(visit_relaying(&v));
	visit_close(&v);
	g_assert_cmpint(v.state, ==, VISIT_CLOSED);
	g_assert_false(v.therapist_present || v.client_present);
}

static void test_refusals_change_nothing(void) {
	visit v;
	fresh(&v);
	bool first;
	ASSERT_REFUSED(&v, visit_join_therapist(&v, "T-02"), VISIT_ERR_UNAUTHORIZED);
	ASSERT_REFUSED(&v, visit_join_therapist(&v, NULL), VISIT_ERR_UNAUTHORIZED);
	ASSERT_REFUSED(&v, visit_join_client(&v, "wrong-invite-abcdefghijklmnop", NULL, true, &first), VISIT_ERR_INVALID_INVITE);
	ASSERT_REFUSED(&v, visit_join_client(&v, NULL, NULL, true, &first), VISIT_ERR_INVALID_INVITE);
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_THERAPIST, 1), VISIT_ERR_WRONG_STATE);
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_NO_CONSENT);
	g_assert_cmpint(visit_join_therapist(&v, "T-01"), ==, VISIT_OK);
	ASSERT_REFUSED(&v, visit_join_therapist(&v, "T-01"), VISIT_ERR_ROLE_PRESENT);
	g_assert_cmpint(visit_join_client(&v, INVITE, NULL, false, &first), ==, VISIT_OK);
	auth_digest r;
	auth_digest_of(REJOIN, &r);
	visit_set_rejoin(&v, &r);
	/* a second client with the same invite: used */
	ASSERT_REFUSED(&v, visit_join_client(&v, INVITE, NULL, true, &first), VISIT_ERR_INVITE_USED);
	ASSERT_REFUSED(&v, visit_join_client(&v, INVITE, "not-the-rejoin-key-abcdefgh", true, &first), VISIT_ERR_INVITE_USED);
	/* the right re-join key while the client is still present: role taken */
	ASSERT_REFUSED(&v, visit_join_client(&v, INVITE, REJOIN, true, &first), VISIT_ERR_ROLE_PRESENT);
	/* no research consent: no observers */
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_NO_CONSENT);
	/* the client may not admit or end */
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_CLIENT, 1), VISIT_ERR_FORBIDDEN);
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_CLIENT, 1), VISIT_ERR_FORBIDDEN);
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_OBSERVER, 1), VISIT_ERR_FORBIDDEN);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_CLIENT), VISIT_ERR_NOT_ADMITTED);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_OBSERVER), VISIT_ERR_FORBIDDEN);
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
	visit_leave(&v, VISIT_ROLE_CLIENT);
	g_assert_cmpint(visit_join_client(&v, INVITE, REJOIN, true, &first), ==, VISIT_OK);
	g_assert_cmpint(v.state, ==, VISIT_ENDED);
	g_assert_false(visit_relaying(&v));
	ASSERT_REFUSED(&v, visit_join_therapist(&v, "T-01"), VISIT_ERR_ROLE_PRESENT);
	visit_leave(&v, VISIT_ROLE_THERAPIST);
	g_assert_cmpint(visit_join_therapist(&v, "T-01"), ==, VISIT_OK);
	/* closed: nothing at all */
	visit_close(&v);
	ASSERT_REFUSED(&v, visit_end(&v, VISIT_ROLE_THERAPIST, 7), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_join_therapist(&v, "T-01"), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_join_client(&v, INVITE, REJOIN, true, &first), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_admit(&v, VISIT_ROLE_THERAPIST, 8), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_may_configure(&v, VISIT_ROLE_THERAPIST), VISIT_ERR_CLOSED);
	ASSERT_REFUSED(&v, visit_join_observer(&v), VISIT_ERR_CLOSED);
}

static void test_client_first_then_therapist(void) {
	visit v;
	fresh(&v);
	bool first;
	g_assert_cmpint(visit_join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	g_assert_cmpint(v.state, ==, VISIT_WAITING);
	/* admit needs a therapist role, not presence: the therapist joins then admits */
	g_assert_cmpint(visit_join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_cmpint(visit_admit(&v, VISIT_ROLE_THERAPIST, 7), ==, VISIT_OK);
	/* observers are allowed with consent */
	g_assert_cmpint(visit_join_observer(&v), ==, VISIT_OK);
	g_assert_cmpint(v.observers, ==, 1);
	visit_leave(&v, VISIT_ROLE_OBSERVER);
	visit_leave(&v, VISIT_ROLE_OBSERVER);   /* never below zero */
	g_assert_cmpint(v.observers, ==, 0);
}

static void test_waiting_client_leaves(void) {
	visit v;
	fresh(&v);
	bool first;
	g_assert_cmpint(visit_join_therapist(&v, "T-01"), ==, VISIT_OK);
	g_assert_cmpint(visit_join_client(&v, INVITE, NULL, true, &first), ==, VISIT_OK);
	visit_leave(&v, VISIT_ROLE_CLIENT);
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
	g_test_add_func("/visit/client-first", test_client_first_then_therapist);
	g_test_add_func("/visit/waiting-client-leaves", test_waiting_client_leaves);
	g_test_add_func("/visit/names", test_names);
	return g_test_run();
}
