/*
 * outcome.h — test support: what a store callback said, for tests that
 * wait for it from another thread (faults, reconnection) rather than with
 * store_sync().
 */
#ifndef ALLIANCE_TEST_OUTCOME_H
#define ALLIANCE_TEST_OUTCOME_H

#include <glib.h>
#include "store.h"

typedef struct outcome {
	GMutex m;
	GCond c;
	int calls;
	store_rc rc;
	gint64 rows;                       /* outcome_count's */
	char error[256];
} outcome;

void outcome_init(outcome *o);

/* store_done_cb and store_count_cb recording into the outcome (user). */
void outcome_done(store_rc rc, const char *error, void *user);
void outcome_count(store_rc rc, gint64 rows, const char *error, void *user);

/* Wait (up to seconds) for the callback; TRUE if it came. */
gboolean outcome_wait(outcome *o, double seconds);

#endif
