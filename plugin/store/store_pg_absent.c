/*
 * store_pg_absent.c — the PostgreSQL entry points of a build without
 * libpq (./configure found no libpq-dev, or --without-postgresql): the
 * open calls refuse with a sentence that says how to get them.
 */
#include "store.h"

static store *absent(char *err, size_t errlen) {
	g_strlcpy(err, "this build has no PostgreSQL support (install libpq-dev and run "
		"./configure again), so general.db_url cannot be used", errlen);
	return NULL;
}

store *store_open_pg(const char *url, char *err, size_t errlen) {
	(void)url;
	return absent(err, errlen);
}

store *store_open_pg_for_reading(const char *url, char *err, size_t errlen) {
	(void)url;
	return absent(err, errlen);
}

store *store_open_pg_for_erasure(const char *url, char *err, size_t errlen) {
	(void)url;
	return absent(err, errlen);
}
