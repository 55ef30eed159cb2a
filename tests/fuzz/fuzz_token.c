/* libFuzzer target: Janus signed tokens (plugin/core/auth.c).
 *
 * 1. The input as a token: never accepted (it is not signed with the
 *    target's secret, and an HMAC is not found by mutation); any answer is
 *    a known rc with a phrase, and a refusal grants nothing.
 * 2. The input's lines as descriptors, signed by auth_signed_make: made
 *    iff no line holds ',' or ':'; the token made verifies, granting what
 *    the descriptors say (computed here, independently of auth.c's
 *    parser); and every single-byte change to it is refused. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>
#include "auth.h"

#define SECRET "fuzz-secret"
#define NOW 1800000000LL
#define MAX_DESC 32

static void no_grant(const auth_grant *g) {
	if(g->supervisor || g->therapist[0] || g->expiry_s)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
	char *text = g_strndup((const char *)data, size);   /* stops at a NUL, as a C string would */
	auth_grant g;
	auth_signed_rc rc = auth_signed_verify(SECRET, text, NOW, &g);
	if(rc == AUTH_SIGNED_OK || rc > AUTH_SIGNED_NO_ROLE || auth_signed_rc_text(rc) == NULL)
		abort();
	no_grant(&g);

	gchar **lines = g_strsplit(text, "\n", MAX_DESC + 1);
	size_t n = g_strv_length(lines);
	if(n > MAX_DESC)
		n = MAX_DESC;
	bool shape_bad = false, plugin = false, supervisor = false, code_bad = false;
	char code[AUTH_CODE_MAX + 2] = "";
	const size_t tl = strlen(AUTH_SIGNED_THERAPIST);
	for(size_t i = 0; i < n; i++) {
		const char *d = lines[i];
		if(strpbrk(d, ",:"))
			shape_bad = true;
		if(!strcmp(d, AUTH_SIGNED_PLUGIN))
			plugin = true;
		else if(!strcmp(d, AUTH_SIGNED_SUPERVISOR))
			supervisor = true;
		else if(!strncmp(d, AUTH_SIGNED_THERAPIST, tl)) {
			const char *c = d + tl;
			if(!auth_code_ok(c) || (code[0] && strcmp(code, c) != 0))
				code_bad = true;
			else
				g_strlcpy(code, c, sizeof(code));
		}
	}
	char *tok = g_malloc(AUTH_SIGNED_MAX + 1);
	int len = auth_signed_make(SECRET, 1999999999LL, AUTH_SIGNED_REALM, (const char *const *)lines, n,
		tok, AUTH_SIGNED_MAX + 1);
	if(shape_bad && len >= 0)
		abort();
	if(len >= 0) {
		if((size_t)len != strlen(tok) || len > AUTH_SIGNED_MAX)
			abort();
		rc = auth_signed_verify(SECRET, tok, NOW, &g);
		auth_signed_rc want = code_bad ? AUTH_SIGNED_BAD_CODE
			: !plugin ? AUTH_SIGNED_NOT_FOR_PLUGIN
			: (!supervisor && !code[0]) ? AUTH_SIGNED_NO_ROLE : AUTH_SIGNED_OK;
		/* a bad code is found wherever it stands; NOT_FOR_PLUGIN only after all */
		if(rc != want)
			abort();
		if(rc == AUTH_SIGNED_OK) {
			if(g.supervisor != supervisor || strcmp(g.therapist, code) != 0 || g.expiry_s != 1999999999LL)
				abort();
			/* one byte changed anywhere: refused */
			size_t at = size ? data[0] % (size_t)len : 0;
			char was = tok[at];
			tok[at] = (char)(was == 'A' ? 'B' : 'A');
			if(auth_signed_verify(SECRET, tok, NOW, &g) == AUTH_SIGNED_OK)
				abort();
			tok[at] = was;
			/* another secret: refused */
			if(auth_signed_verify("another", tok, NOW, &g) != AUTH_SIGNED_BAD_SIGNATURE)
				abort();
		} else {
			no_grant(&g);
		}
	} else if(!shape_bad) {
		/* refused only for length */
		size_t total = 11 + strlen(AUTH_SIGNED_REALM) + 1 + AUTH_SIGNED_SIG_CHARS;
		for(size_t i = 0; i < n; i++)
			total += 1 + strlen(lines[i]);
		if(total <= AUTH_SIGNED_MAX)
			abort();
	}
	g_free(tok);
	g_strfreev(lines);
	g_free(text);
	return 0;
}
