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
