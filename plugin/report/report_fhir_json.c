/*
 * report_fhir_json.c — see report_fhir_json.h: the small pieces every
 * resource of the FHIR export is made of.
 */
#include "report_fhir_json.h"

#include <string.h>

/* The namespace of the resource ids (a random UUID, fixed for good). */
static const guint8 NAMESPACE[16] = { 0x6f, 0x1d, 0x3a, 0x52, 0x8c, 0x4e, 0x4b, 0x09,
	0x9a, 0x7e, 0x2f, 0x51, 0xc3, 0xd8, 0x06, 0xb4 };

const char *fhir_sfield(const json_t *o, const char *key) {
	return json_string_value(json_object_get(o, key));
}

const char *report_fhir_uuid(const char *name, char *buf, size_t len) {
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA1);
	g_checksum_update(c, NAMESPACE, sizeof(NAMESPACE));
	g_checksum_update(c, (const guchar *)name, (gssize)strlen(name));
	guint8 d[20];
	gsize n = sizeof(d);
	g_checksum_get_digest(c, d, &n);
	g_checksum_free(c);
	d[6] = (guint8)((d[6] & 0x0f) | 0x50);   /* version 5 */
	d[8] = (guint8)((d[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
	g_snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9], d[10], d[11], d[12], d[13],
		d[14], d[15]);
	return buf;
}

/* A FHIR string ([ \r\n\t\S]+: not empty, nothing but white space is
 * allowed as long as it is not all of it; valid UTF-8), else NULL. */
json_t *fhir_string(const char *s) {
	if(s == NULL || !g_utf8_validate(s, -1, NULL))
		return NULL;
	for(const char *p = s; *p; p++)
		if(!g_ascii_isspace(*p))
			return json_string(s);
	return NULL;
}

gboolean fhir_string_ok(const char *s) {
	json_t *v = fhir_string(s);
	json_decref(v);
	return v != NULL;
}

/* A part of a canonical URL or an id name: printable ASCII without
 * spaces, '|' or '#' (instrument ids and versions, pulse and visit ids
 * are like that when the plugin wrote them; another writer's are not
 * trusted). */
gboolean fhir_uri_part_ok(const char *s) {
	if(s == NULL || !*s || strlen(s) > 256)
		return FALSE;
	for(const char *p = s; *p; p++)
		if(*p <= ' ' || *p > '~' || *p == '|' || *p == '#')
			return FALSE;
	return TRUE;
}

/* A FHIR code ([^\s]+(\s[^\s]+)*), else NULL. */
json_t *fhir_code(const char *s) {
	if(s == NULL || !*s || !g_utf8_validate(s, -1, NULL) || g_ascii_isspace(s[0]))
		return NULL;
	size_t n = strlen(s);
	if(g_ascii_isspace(s[n - 1]))
		return NULL;
	for(size_t i = 1; i < n; i++)
		if(g_ascii_isspace(s[i]) && (s[i] != ' ' || g_ascii_isspace(s[i - 1])))
			return NULL;
	return json_string(s);
}

void fhir_set_opt(json_t *o, const char *key, json_t *v) {
	if(v)
		json_object_set_new(o, key, v);
}

json_t *fhir_iso(json_t *us) {
	if(!json_is_integer(us))
		return NULL;
	char buf[40];
	return json_string(report_iso_time(json_integer_value(us), buf, sizeof(buf)));
}

static char *entry_url(const char *type, const char *key, char *id, size_t len) {
	char *name = g_strdup_printf("%s/%s", type, key);
	report_fhir_uuid(name, id, len);
	g_free(name);
	return id;
}

/* {fullUrl, resource} with the resource's id set from its name. */
json_t *fhir_entry(json_t *resource, const char *name_key) {
	char id[40];
	entry_url(fhir_sfield(resource, "resourceType"), name_key, id, sizeof(id));
	json_t *o = json_object();
	char *url = g_strdup_printf("urn:uuid:%s", id);
	json_object_set_new(o, "fullUrl", json_string(url));
	g_free(url);
	/* id first, for readers */
	json_t *r = json_pack("{s:O, s:s}", "resourceType", json_object_get(resource, "resourceType"), "id", id);
	json_object_update(r, resource);
	json_decref(resource);
	json_object_set_new(o, "resource", r);
	return o;
}

const char *fhir_full_url(const json_t *e) {
	return fhir_sfield(e, "fullUrl");
}

/* A logical reference: {type, identifier:{system, value}} (no resource). */
json_t *fhir_logical_ref(const char *type, const char *base, const char *sid, const char *value) {
	json_t *v = fhir_string(value);
	if(v == NULL)
		return NULL;
	char *system = g_strdup_printf("%s/sid/%s", base, sid);
	json_t *r = json_object();
	if(type)
		json_object_set_new(r, "type", json_string(type));
	json_object_set_new(r, "identifier", json_pack("{s:s, s:o}", "system", system, "value", v));
	g_free(system);
	return r;
}

json_t *fhir_coding(const char *system, const char *code, const char *display) {
	json_t *c = fhir_code(code);
	if(c == NULL)
		return NULL;
	json_t *o = json_pack("{s:s, s:o}", "system", system, "code", c);
	fhir_set_opt(o, "display", fhir_string(display));
	return o;
}

json_t *fhir_concept(const char *system, const char *code, const char *display) {
	json_t *c = fhir_coding(system, code, display);
	return c ? json_pack("{s:[o]}", "coding", c) : NULL;
}

gboolean fhir_truthy(const json_t *v) {
	return json_is_true(v) || (json_is_integer(v) && json_integer_value(v) != 0);
}
