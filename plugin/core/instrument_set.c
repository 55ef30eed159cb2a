/*
 * instrument_set.c — a folder of instrument definitions (see instrument.h).
 *
 * The only part of the instrument module that does I/O: it lists the
 * folder, reads each *.json file (bounded by INSTRUMENT_FILE_MAX before
 * reading), and hands the bytes to instrument_parse(). Everything else it
 * knows about an instrument comes through the public accessors.
 */
#include "instrument.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

struct instrument_set {
	GPtrArray *list;                       /* of instrument*, load order */
};

/* Printable ASCII only, as instrument_parse() does: file names and system
 * messages end up in logs. */
static void sanitize(char *s) {
	for(; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if(c < 0x20 || c >= 0x7f)
			*s = '?';
	}
}

static void report(GPtrArray *errors, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(GPtrArray *errors, const char *fmt, ...) {
	if(errors == NULL)
		return;
	va_list ap;
	va_start(ap, fmt);
	char *s = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	sanitize(s);
	g_ptr_array_add(errors, s);
}

static gint cmp_names(gconstpointer a, gconstpointer b) {
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read one file into a new instrument, or report why not. */
static instrument *load_file(const char *dir, const char *name, GPtrArray *errors) {
	char *path = g_build_filename(dir, name, NULL);
	instrument *ins = NULL;
	char *buf = NULL;
	gsize len = 0;
	GError *gerr = NULL;
	GStatBuf st;
	if(g_stat(path, &st) != 0)
		report(errors, "%s: -: cannot read: %s", name, g_strerror(errno));
	else if(!S_ISREG(st.st_mode))
		report(errors, "%s: -: not a regular file", name);
	else if(st.st_size > INSTRUMENT_FILE_MAX)
		report(errors, "%s: -: larger than %d bytes", name, INSTRUMENT_FILE_MAX);
	else if(!g_file_get_contents(path, &buf, &len, &gerr))
		report(errors, "%s: -: cannot read: %s", name, gerr->message);
	else {
		char err[INSTRUMENT_ERR_MAX];
		ins = instrument_parse(buf, len, name, err, sizeof(err));
		if(ins == NULL)
			report(errors, "%s", err);
	}
	if(gerr)
		g_error_free(gerr);
	g_free(buf);
	g_free(path);
	return ins;
}

instrument_set *instrument_set_load_dir(const char *dir, GPtrArray *errors) {
	GError *gerr = NULL;
	GDir *d = g_dir_open(dir, 0, &gerr);
	if(d == NULL) {
		report(errors, "%s: -: cannot open the folder: %s", dir, gerr->message);
		g_error_free(gerr);
		return NULL;
	}
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const char *name;
	while((name = g_dir_read_name(d)) != NULL)
		if(name[0] != '.' && g_str_has_suffix(name, ".json"))
			g_ptr_array_add(names, g_strdup(name));
	g_dir_close(d);
	g_ptr_array_sort(names, cmp_names);
	instrument_set *set = g_new0(instrument_set, 1);
	set->list = g_ptr_array_new_with_free_func((GDestroyNotify)instrument_free);
	for(guint i = 0; i < names->len; i++) {
		const char *file = g_ptr_array_index(names, i);
		instrument *ins = load_file(dir, file, errors);
		if(ins == NULL)
			continue;
		const instrument *prev = instrument_set_get(set, instrument_id(ins));
		if(prev != NULL) {
			report(errors, "%s: -: id \"%s\" is already defined by %s", file, instrument_id(ins), instrument_source(prev));
			instrument_free(ins);
			continue;
		}
		g_ptr_array_add(set->list, ins);
	}
	g_ptr_array_free(names, TRUE);
	return set;
}

const instrument *instrument_set_get(const instrument_set *set, const char *id) {
	for(guint i = 0; id && i < set->list->len; i++) {
		const instrument *ins = g_ptr_array_index(set->list, i);
		if(!strcmp(instrument_id(ins), id))
			return ins;
	}
	return NULL;
}

const instrument *instrument_set_default(const instrument_set *set, const char *kind) {
	for(guint i = 0; kind && i < set->list->len; i++) {
		const instrument *ins = g_ptr_array_index(set->list, i);
		if(!strcmp(instrument_kind(ins), kind))
			return ins;
	}
	return NULL;
}

int instrument_set_count(const instrument_set *set) {
	return (int)set->list->len;
}

const instrument *instrument_set_nth(const instrument_set *set, int i) {
	return (i >= 0 && i < (int)set->list->len) ? g_ptr_array_index(set->list, i) : NULL;
}

void instrument_set_free(instrument_set *set) {
	if(set == NULL)
		return;
	g_ptr_array_free(set->list, TRUE);
	g_free(set);
}
