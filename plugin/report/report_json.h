/*
 * report_json.h — the three small jansson helpers every report module
 * uses to read store rows and write statistics: a number that may be
 * refused (NaN/±Inf -> null), a row's numeric field (NaN when absent, null
 * or not a number) and a row's string field (NULL when absent). Internal
 * to plugin/report.
 */
#ifndef ALLIANCE_REPORT_JSON_H
#define ALLIANCE_REPORT_JSON_H

#include <jansson.h>
#include <math.h>

static inline json_t *report_num(double x) {
	return isfinite(x) ? json_real(x) : json_null();
}

static inline double report_field(const json_t *row, const char *key) {
	json_t *v = json_object_get(row, key);
	return json_is_number(v) ? json_number_value(v) : NAN;
}

static inline const char *report_sfield(const json_t *row, const char *key) {
	return json_string_value(json_object_get(row, key));
}

#endif
