/*
 * auth.c — see auth.h. Tokens from getrandom(2), SHA-256 from GLib,
 * constant-time comparisons written out here (a dozen lines; pulling in
 * libcrypto for CRYPTO_memcmp alone is not worth a dependency).
 */
#include "auth.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>
#include <sys/random.h>
#include <glib.h>

int auth_token_new(char out[AUTH_TOKEN_CHARS + 1]) {
	uint8_t raw[AUTH_TOKEN_BYTES];
	size_t got = 0;
	while(got < sizeof(raw)) {
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if(n < 0) {
			if(errno == EINTR)
				continue;
			memset(out, 0, AUTH_TOKEN_CHARS + 1);
			return -1;
		}
		got += (size_t)n;
	}
	auth_base64url(raw, sizeof(raw), out);
	memset(raw, 0, sizeof(raw));
	return 0;
}

size_t auth_base64url(const uint8_t *in, size_t len, char *out) {
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0, i = 0;
	while(i + 3 <= len) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i+1] << 8) | in[i+2];
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
		i += 3;
	}
	if(len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
	} else if(len - i == 2) {
		uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i+1] << 8);
		out[o++] = alphabet[(v >> 18) & 63];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
	}
	out[o] = '\0';
	return o;
}

void auth_digest_of(const char *token, auth_digest *out) {
	GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(c, (const guchar *)token, (gssize)strlen(token));
	gsize n = AUTH_DIGEST_LEN;
	g_checksum_get_digest(c, out->b, &n);
	g_checksum_free(c);
}

static int hexval(char c) {
	if(c >= '0' && c <= '9') return c - '0';
	if(c >= 'a' && c <= 'f') return c - 'a' + 10;
	if(c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int auth_digest_from_hex(const char *hex, auth_digest *out) {
	if(hex == NULL || strlen(hex) != 2 * AUTH_DIGEST_LEN)
		return -1;
	for(size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
		int hi = hexval(hex[2*i]), lo = hexval(hex[2*i+1]);
		if(hi < 0 || lo < 0)
			return -1;
		out->b[i] = (uint8_t)((hi << 4) | lo);
	}
	return 0;
}

void auth_digest_hex(const auth_digest *d, char out[2 * AUTH_DIGEST_LEN + 1]) {
	static const char digits[] = "0123456789abcdef";
	for(size_t i = 0; i < AUTH_DIGEST_LEN; i++) {
		out[2*i] = digits[d->b[i] >> 4];
		out[2*i+1] = digits[d->b[i] & 0xf];
	}
	out[2 * AUTH_DIGEST_LEN] = '\0';
}

bool auth_digest_equal(const auth_digest *a, const auth_digest *b) {
	volatile uint8_t diff = 0;
	for(size_t i = 0; i < AUTH_DIGEST_LEN; i++)
		diff |= (uint8_t)(a->b[i] ^ b->b[i]);
	return diff == 0;
}

bool auth_token_shape_ok(const char *s) {
	if(s == NULL)
		return false;
	size_t n = 0;
	for(; s[n]; n++) {
		char c = s[n];
		if(!(g_ascii_isalnum(c) || c == '-' || c == '_'))
			return false;
		if(n >= 128)
			return false;
	}
	return n >= 16;
}

bool auth_code_ok(const char *s) {
	if(s == NULL || *s == '\0')
		return false;
	size_t n = 0;
	for(; s[n]; n++) {
		char c = s[n];
		if(!(g_ascii_isalnum(c) || c == '-' || c == '_' || c == '.'))
			return false;
		if(n >= AUTH_CODE_MAX)
			return false;
	}
	return true;
}

typedef struct auth_entry {
	auth_digest digest;
	char code[AUTH_CODE_MAX + 1];
} auth_entry;

struct auth_keyring {
	GArray *therapists;   /* of auth_entry */
	GArray *supervisors;  /* of auth_entry (code unused) */
};

auth_keyring *auth_keyring_new(void) {
	auth_keyring *kr = g_new0(auth_keyring, 1);
	kr->therapists = g_array_new(FALSE, TRUE, sizeof(auth_entry));
	kr->supervisors = g_array_new(FALSE, TRUE, sizeof(auth_entry));
	return kr;
}

void auth_keyring_free(auth_keyring *kr) {
	if(kr == NULL)
		return;
	g_array_free(kr->therapists, TRUE);
	g_array_free(kr->supervisors, TRUE);
	g_free(kr);
}

/* Index of the entry whose digest equals d, or -1; visits every entry. */
static long find_ct(const GArray *arr, const auth_digest *d) {
	long found = -1;
	for(guint i = 0; i < arr->len; i++) {
		const auth_entry *e = &g_array_index(arr, auth_entry, i);
		bool eq = auth_digest_equal(&e->digest, d);
		/* branch-free select keeps the loop's timing uniform */
		long mask = -(long)eq;
		found = (found & ~mask) | ((long)i & mask);
	}
	return found;
}

static int add_entry(GArray *arr, const char *code, const char *hex, char *err, size_t errlen) {
	auth_entry e;
	memset(&e, 0, sizeof(e));
	if(auth_digest_from_hex(hex, &e.digest) < 0) {
		snprintf(err, errlen, "key_sha256 must be 64 hex characters");
		return -1;
	}
	if(find_ct(arr, &e.digest) >= 0) {
		snprintf(err, errlen, "duplicate key_sha256");
		return -1;
	}
	if(code)
		g_strlcpy(e.code, code, sizeof(e.code));
	g_array_append_val(arr, e);
	return 0;
}

int auth_keyring_add_therapist(auth_keyring *kr, const char *code,
		const char *key_sha256_hex, char *err, size_t errlen) {
	if(!auth_code_ok(code)) {
		snprintf(err, errlen, "code must be 1-%d characters of A-Z a-z 0-9 . _ -", AUTH_CODE_MAX);
		return -1;
	}
	return add_entry(kr->therapists, code, key_sha256_hex, err, errlen);
}

int auth_keyring_add_supervisor(auth_keyring *kr, const char *key_sha256_hex,
		char *err, size_t errlen) {
	return add_entry(kr->supervisors, NULL, key_sha256_hex, err, errlen);
}

size_t auth_keyring_therapists(const auth_keyring *kr) {
	return kr->therapists->len;
}

size_t auth_keyring_supervisors(const auth_keyring *kr) {
	return kr->supervisors->len;
}

const char *auth_keyring_therapist(const auth_keyring *kr, const char *key) {
	if(!auth_token_shape_ok(key))
		return NULL;
	auth_digest d;
	auth_digest_of(key, &d);
	long i = find_ct(kr->therapists, &d);
	return i < 0 ? NULL : g_array_index(kr->therapists, auth_entry, (guint)i).code;
}

int auth_keyring_supervisor_index(const auth_keyring *kr, const char *key) {
	if(!auth_token_shape_ok(key))
		return -1;
	auth_digest d;
	auth_digest_of(key, &d);
	return (int)find_ct(kr->supervisors, &d);
}

bool auth_keyring_supervisor(const auth_keyring *kr, const char *key) {
	return auth_keyring_supervisor_index(kr, key) >= 0;
}

/* --- Janus signed tokens ------------------------------------------------------ */

/* The standard base64 (with padding) of HMAC-SHA1(secret, text[0..len)),
 * AUTH_SIGNED_SIG_CHARS characters and a NUL into out. */
static void signed_signature(const char *secret, const char *text, size_t len,
		char out[AUTH_SIGNED_SIG_CHARS + 1]) {
	GHmac *h = g_hmac_new(G_CHECKSUM_SHA1, (const guchar *)secret, strlen(secret));
	g_hmac_update(h, (const guchar *)text, (gssize)len);
	guint8 mac[20];
	gsize n = sizeof(mac);
	g_hmac_get_digest(h, mac, &n);
	g_hmac_unref(h);
	gchar *b64 = g_base64_encode(mac, n);
	g_strlcpy(out, b64, AUTH_SIGNED_SIG_CHARS + 1);
	memset(b64, 0, strlen(b64));
	g_free(b64);
	memset(mac, 0, sizeof(mac));
}

static bool base64_char(char c) {
	return g_ascii_isalnum(c) || c == '+' || c == '/' || c == '=';
}

/* Constant-time equality of two strings of n bytes. */
static bool equal_ct(const char *a, const char *b, size_t n) {
	volatile uint8_t diff = 0;
	for(size_t i = 0; i < n; i++)
		diff |= (uint8_t)(a[i] ^ b[i]);
	return diff == 0;
}

/* One descriptor of the signed text [d, d+len). */
static auth_signed_rc signed_descriptor(const char *d, size_t len, bool *plugin, auth_grant *g) {
	const size_t tl = strlen(AUTH_SIGNED_THERAPIST);
	if(len == strlen(AUTH_SIGNED_PLUGIN) && !memcmp(d, AUTH_SIGNED_PLUGIN, len)) {
		*plugin = true;
	} else if(len == strlen(AUTH_SIGNED_SUPERVISOR) && !memcmp(d, AUTH_SIGNED_SUPERVISOR, len)) {
		g->supervisor = true;
	} else if(len >= tl && !memcmp(d, AUTH_SIGNED_THERAPIST, tl)) {
		char code[AUTH_CODE_MAX + 2];
		size_t cl = len - tl;
		if(cl == 0 || cl > AUTH_CODE_MAX)
			return AUTH_SIGNED_BAD_CODE;
		memcpy(code, d + tl, cl);
		code[cl] = '\0';
		if(!auth_code_ok(code))
			return AUTH_SIGNED_BAD_CODE;
		if(g->therapist[0] && strcmp(g->therapist, code) != 0)
			return AUTH_SIGNED_BAD_CODE;      /* two therapists: whose is it? */
		g_strlcpy(g->therapist, code, sizeof(g->therapist));
	}
	return AUTH_SIGNED_OK;                    /* other descriptors: other plugins' */
}

auth_signed_rc auth_signed_verify(const char *secret, const char *token, int64_t now_s,
		auth_grant *out) {
	memset(out, 0, sizeof(*out));
	if(secret == NULL || secret[0] == '\0')
		return AUTH_SIGNED_DISABLED;
	if(token == NULL)
		return AUTH_SIGNED_MALFORMED;
	size_t len = strnlen(token, AUTH_SIGNED_MAX + 1);
	if(len > AUTH_SIGNED_MAX)
		return AUTH_SIGNED_MALFORMED;
	const char *colon = memchr(token, ':', len);
	if(colon == NULL || colon == token)
		return AUTH_SIGNED_MALFORMED;
	const char *sig = colon + 1;
	size_t text_len = (size_t)(colon - token);
	if(len - text_len - 1 != AUTH_SIGNED_SIG_CHARS)
		return AUTH_SIGNED_MALFORMED;
	for(size_t i = 0; i < AUTH_SIGNED_SIG_CHARS; i++)
		if(!base64_char(sig[i]))
			return AUTH_SIGNED_MALFORMED;
	char want[AUTH_SIGNED_SIG_CHARS + 1];
	signed_signature(secret, token, text_len, want);
	bool good = equal_ct(want, sig, AUTH_SIGNED_SIG_CHARS);
	memset(want, 0, sizeof(want));
	if(!good)
		return AUTH_SIGNED_BAD_SIGNATURE;
	/* signed: now read it. <expiry>,<realm>[,<descriptor>...] */
	auth_grant g;
	memset(&g, 0, sizeof(g));
	const char *p = token, *end = colon;
	const char *comma = memchr(p, ',', (size_t)(end - p));
	size_t el = comma ? (size_t)(comma - p) : (size_t)(end - p);
	if(comma == NULL || el == 0 || el > 18)
		return AUTH_SIGNED_MALFORMED;
	int64_t expiry = 0;
	for(size_t i = 0; i < el; i++) {
		if(!g_ascii_isdigit(p[i]))
			return AUTH_SIGNED_MALFORMED;
		expiry = expiry * 10 + (p[i] - '0');
	}
	if(now_s > expiry)
		return AUTH_SIGNED_EXPIRED;
	g.expiry_s = expiry;
	p = comma + 1;
	comma = memchr(p, ',', (size_t)(end - p));
	size_t rl = comma ? (size_t)(comma - p) : (size_t)(end - p);
	if(rl != strlen(AUTH_SIGNED_REALM) || memcmp(p, AUTH_SIGNED_REALM, rl) != 0)
		return AUTH_SIGNED_WRONG_REALM;
	bool plugin = false;
	while(comma != NULL) {
		p = comma + 1;
		comma = memchr(p, ',', (size_t)(end - p));
		size_t dl = comma ? (size_t)(comma - p) : (size_t)(end - p);
		auth_signed_rc rc = signed_descriptor(p, dl, &plugin, &g);
		if(rc != AUTH_SIGNED_OK)
			return rc;
	}
	if(!plugin)
		return AUTH_SIGNED_NOT_FOR_PLUGIN;
	if(!g.supervisor && g.therapist[0] == '\0')
		return AUTH_SIGNED_NO_ROLE;
	*out = g;
	return AUTH_SIGNED_OK;
}

const char *auth_signed_rc_text(auth_signed_rc rc) {
	switch(rc) {
		case AUTH_SIGNED_OK: return "valid";
		case AUTH_SIGNED_DISABLED: return "signed tokens are not enabled on this server";
		case AUTH_SIGNED_MALFORMED: return "not a signed token";
		case AUTH_SIGNED_BAD_SIGNATURE: return "not signed with this server's secret";
		case AUTH_SIGNED_EXPIRED: return "expired";
		case AUTH_SIGNED_WRONG_REALM: return "not of realm janus";
		case AUTH_SIGNED_NOT_FOR_PLUGIN: return "does not name janus.plugin.alliance";
		case AUTH_SIGNED_BAD_CODE: return "a bad alliance.therapist code";
		case AUTH_SIGNED_NO_ROLE: return "grants no alliance role";
	}
	return "refused";
}

int auth_signed_make(const char *secret, int64_t expiry_s, const char *realm,
		const char *const *descriptors, size_t n, char *out, size_t outlen) {
	if(secret == NULL || realm == NULL || out == NULL || expiry_s < 0)
		return -1;
	GString *t = g_string_new(NULL);
	g_string_append_printf(t, "%" G_GINT64_FORMAT ",%s", (gint64)expiry_s, realm);
	bool bad = strpbrk(realm, ",:") != NULL;
	for(size_t i = 0; i < n; i++) {
		bad = bad || descriptors[i] == NULL || strpbrk(descriptors[i], ",:") != NULL;
		if(!bad)
			g_string_append_printf(t, ",%s", descriptors[i]);
	}
	char sig[AUTH_SIGNED_SIG_CHARS + 1];
	signed_signature(secret, t->str, t->len, sig);
	int len = (int)(t->len + 1 + AUTH_SIGNED_SIG_CHARS);
	if(!bad && (size_t)len < outlen)
		g_snprintf(out, outlen, "%s:%s", t->str, sig);
	g_string_free(t, TRUE);
	return (bad || (size_t)len >= outlen) ? -1 : len;
}
