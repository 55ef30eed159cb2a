/* Unit tests for ratelimit.c: the token bucket. */
#include <glib.h>
#include "ratelimit.h"

static void test_burst_then_rate(void) {
	ratelimit rl;
	ratelimit_init(&rl, 20.0, 40.0, 0);
	int ok = 0;
	for(int i = 0; i < 100; i++)
		ok += ratelimit_take(&rl, 0);
	g_assert_cmpint(ok, ==, 40);              /* the burst, then nothing */
	g_assert_false(ratelimit_take(&rl, 49999));  /* 0.99 of a token after 49.999 ms */
	g_assert_true(ratelimit_take(&rl, 50000));   /* 1 token after 50 ms at 20/s */
	g_assert_false(ratelimit_take(&rl, 50000));
	/* one second later: 20 more, not more */
	ok = 0;
	for(int i = 0; i < 100; i++)
		ok += ratelimit_take(&rl, 1050000);
	g_assert_cmpint(ok, ==, 20);
	/* a long pause refills to the burst only */
	ok = 0;
	for(int i = 0; i < 100; i++)
		ok += ratelimit_take(&rl, 100000000);
	g_assert_cmpint(ok, ==, 40);
}

static void test_clock_backwards(void) {
	ratelimit rl;
	ratelimit_init(&rl, 10.0, 1.0, 1000000);
	g_assert_true(ratelimit_take(&rl, 1000000));
	g_assert_false(ratelimit_take(&rl, 0));       /* going back refills nothing */
	g_assert_false(ratelimit_take(&rl, 1050000)); /* half a token */
	g_assert_true(ratelimit_take(&rl, 1100000));
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/ratelimit/burst-then-rate", test_burst_then_rate);
	g_test_add_func("/ratelimit/clock-backwards", test_clock_backwards);
	return g_test_run();
}
