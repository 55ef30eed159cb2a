/* outcome.c — see outcome.h. */
#include "outcome.h"

#include <string.h>

void outcome_init(outcome *o) {
	memset(o, 0, sizeof(*o));
	g_mutex_init(&o->m);
	g_cond_init(&o->c);
}

void outcome_done(store_rc rc, const char *error, void *user) {
	outcome *o = user;
	g_mutex_lock(&o->m);
	o->calls++;
	o->rc = rc;
	g_strlcpy(o->error, error ? error : "", sizeof(o->error));
	g_cond_broadcast(&o->c);
	g_mutex_unlock(&o->m);
}

void outcome_count(store_rc rc, gint64 rows, const char *error, void *user) {
	outcome *o = user;
	g_mutex_lock(&o->m);
	o->rows = rows;
	g_mutex_unlock(&o->m);
	outcome_done(rc, error, user);
}

gboolean outcome_wait(outcome *o, double seconds) {
	gint64 until = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);
	g_mutex_lock(&o->m);
	while(o->calls == 0)
		if(!g_cond_wait_until(&o->c, &o->m, until))
			break;
	gboolean came = o->calls > 0;
	g_mutex_unlock(&o->m);
	return came;
}
