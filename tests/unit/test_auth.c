/* Unit tests for auth.c: tokens, digests, constant-time keyring. */
#include <glib.h>
#include <string.h>
#include "auth.h"

static void test_base64url_vectors(void) {
	/* RFC 4648 test vectors, URL-safe alphabet, no padding */
	struct { const char *in, *out; } v[] = {
		{"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"},
		{"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"},
	};
	char out[16];
	for(size_t i = 0; i < G_N_ELEMENTS(v); i++) {
		size_t n = auth_base64url((const uint8_t *)v[i].in, strlen(v[i].in), out);
		g_assert_cmpstr(out, ==, v[i].out);
		g_assert_cmpuint(n, ==, strlen(v[i].out));
	}
	/* bytes that need the URL-safe characters */
	const uint8_t hi[] = {0xfb, 0xff, 0xfe};
	auth_base64url(hi, 3, out);
	g_assert_cmpstr(out, ==, "-__-");
}

static void test_token_shape_and_uniqueness(void) {
	GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	for(int i = 0; i < 1000; i++) {
		char t[AUTH_TOKEN_CHARS + 1];
		g_assert_cmpint(auth_token_new(t), ==, 0);
		g_assert_cmpuint(strlen(t), ==, AUTH_TOKEN_CHARS);
		g_assert_true(auth_token_shape_ok(t));
		g_assert_false(g_hash_table_contains(seen, t));
		g_hash_table_add(seen, g_strdup(t));
	}
	g_hash_table_destroy(seen);
	/* 192 bits */
	g_assert_cmpint(AUTH_TOKEN_BYTES * 8, >=, 128);
}

static void test_digest_known_value(void) {
	auth_digest d, e;
	auth_digest_of("abc", &d);
	/* FIPS 180-2 SHA-256("abc") */
	g_assert_cmpint(auth_digest_from_hex(
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", &e), ==, 0);
	g_assert_true(auth_digest_equal(&d, &e));
	/* upper case hex accepted */
	g_assert_cmpint(auth_digest_from_hex(
		"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", &e), ==, 0);
	g_assert_true(auth_digest_equal(&d, &e));
	e.b[31] ^= 1;
	g_assert_false(auth_digest_equal(&d, &e));
	e.b[31] ^= 1;
	e.b[0] ^= 0x80;
	g_assert_false(auth_digest_equal(&d, &e));
}

static void test_digest_bad_hex(void) {
	auth_digest d;
	g_assert_cmpint(auth_digest_from_hex(NULL, &d), ==, -1);
	g_assert_cmpint(auth_digest_from_hex("", &d), ==, -1);
	g_assert_cmpint(auth_digest_from_hex("abcd", &d), ==, -1);
	/* right length, a non-hex character */
	g_assert_cmpint(auth_digest_from_hex(
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ag", &d), ==, -1);
	/* one too long */
	g_assert_cmpint(auth_digest_from_hex(
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad0", &d), ==, -1);
}

static void test_shapes(void) {
	g_assert_false(auth_token_shape_ok(NULL));
	g_assert_false(auth_token_shape_ok("short"));
	g_assert_true(auth_token_shape_ok("abcdefghijklmnop"));        /* 16 */
	g_assert_false(auth_token_shape_ok("abcdefghijklmno"));        /* 15 */
	g_assert_false(auth_token_shape_ok("abcdefghijklmnop=="));
	g_assert_false(auth_token_shape_ok("abcdefgh ijklmnop"));
	char big[200];
	memset(big, 'a', sizeof(big) - 1);
	big[199] = '\0';
	g_assert_false(auth_token_shape_ok(big));
	big[128] = '\0';
	g_assert_true(auth_token_shape_ok(big));
	big[128] = 'a'; big[129] = '\0';
	g_assert_false(auth_token_shape_ok(big));

	g_assert_true(auth_code_ok("C-0042"));
	g_assert_true(auth_code_ok("T-07"));
	g_assert_true(auth_code_ok("a.b_c-d"));
	g_assert_false(auth_code_ok(""));
	g_assert_false(auth_code_ok(NULL));
	g_assert_false(auth_code_ok("Jane Doe"));
	g_assert_false(auth_code_ok("C-42\n"));
	g_assert_false(auth_code_ok("Ä-1"));
	char code[40];
	memset(code, 'x', 32); code[32] = '\0';
	g_assert_true(auth_code_ok(code));
	memset(code, 'x', 33); code[33] = '\0';
	g_assert_false(auth_code_ok(code));
}

static void hex_of(const char *token, char out[65]) {
	auth_digest d;
	auth_digest_of(token, &d);
	for(int i = 0; i < 32; i++)
		g_snprintf(out + 2*i, 3, "%02x", d.b[i]);
}

static void test_keyring(void) {
	auth_keyring *kr = auth_keyring_new();
	char err[160];
	char h1[65], h2[65], hs[65];
	const char *k1 = "therapist-one-key-0123456789", *k2 = "therapist-two-key-0123456789";
	const char *ks = "supervisor-key-abcdefghijkl";
	hex_of(k1, h1); hex_of(k2, h2); hex_of(ks, hs);
	g_assert_cmpint(auth_keyring_add_therapist(kr, "T-01", h1, err, sizeof(err)), ==, 0);
	g_assert_cmpint(auth_keyring_add_therapist(kr, "T-02", h2, err, sizeof(err)), ==, 0);
	g_assert_cmpint(auth_keyring_add_supervisor(kr, hs, err, sizeof(err)), ==, 0);
	/* refusals, each with a reason */
	g_assert_cmpint(auth_keyring_add_therapist(kr, "T-03", h1, err, sizeof(err)), ==, -1);
	g_assert_nonnull(strstr(err, "duplicate"));
	g_assert_cmpint(auth_keyring_add_therapist(kr, "Dr Smith", h2, err, sizeof(err)), ==, -1);
	g_assert_nonnull(strstr(err, "code"));
	g_assert_cmpint(auth_keyring_add_therapist(kr, NULL, h2, err, sizeof(err)), ==, -1);
	g_assert_cmpint(auth_keyring_add_therapist(kr, "T-04", "nothex", err, sizeof(err)), ==, -1);
	g_assert_nonnull(strstr(err, "64 hex"));
	g_assert_cmpint(auth_keyring_add_supervisor(kr, NULL, err, sizeof(err)), ==, -1);
	g_assert_cmpuint(auth_keyring_therapists(kr), ==, 2);
	g_assert_cmpuint(auth_keyring_supervisors(kr), ==, 1);

	g_assert_cmpstr(auth_keyring_therapist(kr, k1), ==, "T-01");
	g_assert_cmpstr(auth_keyring_therapist(kr, k2), ==, "T-02");
	g_assert_null(auth_keyring_therapist(kr, ks));
	g_assert_null(auth_keyring_therapist(kr, "therapist-one-key-012345678"));
	g_assert_null(auth_keyring_therapist(kr, NULL));
	g_assert_null(auth_keyring_therapist(kr, ""));
	g_assert_true(auth_keyring_supervisor(kr, ks));
	g_assert_false(auth_keyring_supervisor(kr, k1));
	g_assert_false(auth_keyring_supervisor(kr, NULL));
	auth_keyring_free(kr);
	auth_keyring_free(NULL);
}

/* --- Janus signed tokens ---------------------------------------------------- */
#define SECRET "janus-test-secret"
#define NOW 1800000000LL

/* Tokens made by Python's hmac + base64 (an implementation nobody here
 * wrote), as the Janus documentation's sample code makes them:
 *   text + ":" + base64.b64encode(hmac.new(secret, text, sha1).digest()) */
static const char *const PY_THERAPIST =
	"1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:A1BCv0gXXvSOCJOlKXvEZS0XFko=";
static const char *const PY_SUPERVISOR =
	"1999999999,janus,janus.plugin.videoroom,janus.plugin.alliance,alliance.supervisor:WDZyOh3Mxv9z8AMX7kkuyPTb/co=";
static const char *const PY_EXPIRED =
	"1700000000,janus,janus.plugin.alliance,alliance.therapist=T-01:pFMKA43NWGzhKCYnXtlCTw9fjd0=";

static void test_signed_reference_tokens(void) {
	auth_grant g;
	g_assert_cmpint(auth_signed_verify(SECRET, PY_THERAPIST, NOW, &g), ==, AUTH_SIGNED_OK);
	g_assert_cmpstr(g.therapist, ==, "T-01");
	g_assert_false(g.supervisor);
	g_assert_cmpint(g.expiry_s, ==, 1999999999LL);
	g_assert_cmpint(auth_signed_verify(SECRET, PY_SUPERVISOR, NOW, &g), ==, AUTH_SIGNED_OK);
	g_assert_true(g.supervisor);
	g_assert_cmpstr(g.therapist, ==, "");
	g_assert_cmpint(auth_signed_verify(SECRET, PY_EXPIRED, NOW, &g), ==, AUTH_SIGNED_EXPIRED);
	g_assert_cmpstr(g.therapist, ==, "");     /* nothing granted */
	/* valid through the expiry second, not after */
	g_assert_cmpint(auth_signed_verify(SECRET, PY_EXPIRED, 1700000000LL, &g), ==, AUTH_SIGNED_OK);
	g_assert_cmpint(auth_signed_verify(SECRET, PY_EXPIRED, 1700000001LL, &g), ==, AUTH_SIGNED_EXPIRED);
	/* another secret, or none */
	g_assert_cmpint(auth_signed_verify("another-secret", PY_THERAPIST, NOW, &g), ==, AUTH_SIGNED_BAD_SIGNATURE);
	g_assert_cmpint(auth_signed_verify(NULL, PY_THERAPIST, NOW, &g), ==, AUTH_SIGNED_DISABLED);
	g_assert_cmpint(auth_signed_verify("", PY_THERAPIST, NOW, &g), ==, AUTH_SIGNED_DISABLED);
	/* our maker agrees with Python's */
	char out[256];
	const char *d[] = { "janus.plugin.alliance", "alliance.therapist=T-01" };
	g_assert_cmpint(auth_signed_make(SECRET, 1999999999LL, "janus", d, 2, out, sizeof(out)), ==,
		(int)strlen(PY_THERAPIST));
	g_assert_cmpstr(out, ==, PY_THERAPIST);
}

/* Every single-byte change of a signed token is refused. */
static void test_signed_tampering(void) {
	auth_grant g;
	char t[256];
	size_t n = strlen(PY_THERAPIST);
	for(size_t i = 0; i < n; i++) {
		g_strlcpy(t, PY_THERAPIST, sizeof(t));
		t[i] = (t[i] == 'A') ? 'B' : 'A';
		g_assert_cmpint(auth_signed_verify(SECRET, t, NOW, &g), !=, AUTH_SIGNED_OK);
		g_assert_cmpstr(g.therapist, ==, "");
	}
	/* T-01 -> T-02 in the text: the signature no longer matches */
	g_strlcpy(t, PY_THERAPIST, sizeof(t));
	*strstr(t, "T-01") = 'T';
	strstr(t, "T-01")[3] = '2';
	g_assert_cmpint(auth_signed_verify(SECRET, t, NOW, &g), ==, AUTH_SIGNED_BAD_SIGNATURE);
}

static void test_signed_hostile_shapes(void) {
	auth_grant g;
	const char *bad[] = {
		"", ":", "abc", "1999999999,janus", "1999999999,janus:",
		":A1BCv0gXXvSOCJOlKXvEZS0XFko=",                     /* no text */
		"1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:A1BCv0gXXvSOCJOlKXvEZS0XFko",   /* 27 */
		"1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:A1BCv0gXXvSOCJOlKXvEZS0XFko==", /* 29 */
		"1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:A1BCv0gXXvSOCJOlKXvEZS0XF*o=",  /* not base64 */
		"1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:A1BC:0gXXvSOCJOlKXvEZS0XFko=",  /* two ':' */
		"1999999999,janus,janus.plugin.alliance,alliance.therapist=T-01:A1BCv0gXXvSOCJOlKXvEZS0XFko=\n",
	};
	for(size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		auth_signed_rc rc = auth_signed_verify(SECRET, bad[i], NOW, &g);
		g_assert_true(rc == AUTH_SIGNED_MALFORMED || rc == AUTH_SIGNED_BAD_SIGNATURE);
	}
	g_assert_cmpint(auth_signed_verify(SECRET, NULL, NOW, &g), ==, AUTH_SIGNED_MALFORMED);
	/* huge: refused by length before any hashing; also just over the limit */
	size_t big = 1 << 20;
	char *huge = g_malloc(big + 1);
	memset(huge, 'a', big);
	huge[big] = '\0';
	g_assert_cmpint(auth_signed_verify(SECRET, huge, NOW, &g), ==, AUTH_SIGNED_MALFORMED);
	/* a validly signed token at the limit is accepted, one byte more is not */
	GString *desc = g_string_new("x");
	char *tok = g_malloc(AUTH_SIGNED_MAX + 64);
	const char *d[3] = { "janus.plugin.alliance", "alliance.supervisor", NULL };
	int len;
	for(;;) {
		d[2] = desc->str;
		len = auth_signed_make(SECRET, 1999999999LL, "janus", d, 3, tok, AUTH_SIGNED_MAX + 64);
		g_assert_cmpint(len, >, 0);
		if(len >= AUTH_SIGNED_MAX)
			break;
		g_string_append_c(desc, 'x');
	}
	g_assert_cmpint(len, ==, AUTH_SIGNED_MAX);
	g_assert_cmpint(auth_signed_verify(SECRET, tok, NOW, &g), ==, AUTH_SIGNED_OK);
	g_string_append_c(desc, 'x');
	d[2] = desc->str;
	g_assert_cmpint(auth_signed_make(SECRET, 1999999999LL, "janus", d, 3, tok, AUTH_SIGNED_MAX + 64), ==,
		AUTH_SIGNED_MAX + 1);
	g_assert_cmpint(auth_signed_verify(SECRET, tok, NOW, &g), ==, AUTH_SIGNED_MALFORMED);
	g_free(tok);
	g_string_free(desc, TRUE);
	g_free(huge);
}

/* Signed, but granting the wrong thing: each refused with its reason. */
static void test_signed_wrong_descriptors(void) {
	struct { const char *expiry, *realm; const char *d[4]; size_t n; auth_signed_rc want; } v[] = {
		{ "1999999999", "janus", { "alliance.therapist=T-01" }, 1, AUTH_SIGNED_NOT_FOR_PLUGIN },
		{ "1999999999", "janus", { "janus.plugin.alliance" }, 1, AUTH_SIGNED_NO_ROLE },
		{ "1999999999", "janus", { 0 }, 0, AUTH_SIGNED_NOT_FOR_PLUGIN },
		{ "1999999999", "janus.plugin.alliance", { "janus.plugin.alliance", "alliance.supervisor" }, 2,
			AUTH_SIGNED_WRONG_REALM },
		{ "1999999999", "Janus", { "janus.plugin.alliance", "alliance.supervisor" }, 2, AUTH_SIGNED_WRONG_REALM },
		{ "1999999999", "janus", { "janus.plugin.alliance", "alliance.therapist=" }, 2, AUTH_SIGNED_BAD_CODE },
		{ "1999999999", "janus", { "janus.plugin.alliance", "alliance.therapist=T 01" }, 2, AUTH_SIGNED_BAD_CODE },
		{ "1999999999", "janus", { "janus.plugin.alliance", "alliance.therapist=T-01",
			"alliance.therapist=T-02" }, 3, AUTH_SIGNED_BAD_CODE },
		{ "1999999999", "janus", { "janus.plugin.alliance", "alliance.therapist=T-0123456789012345678901234567890" },
			2, AUTH_SIGNED_BAD_CODE },
		/* near misses of the descriptors are other descriptors */
		{ "1999999999", "janus", { "janus.plugin.alliance2", "alliance.supervisor" }, 2, AUTH_SIGNED_NOT_FOR_PLUGIN },
		{ "1999999999", "janus", { "janus.plugin.alliance", "alliance.supervisors" }, 2, AUTH_SIGNED_NO_ROLE },
		{ "1999999999", "janus", { "janus.plugin.alliance", "alliance.therapist" }, 2, AUTH_SIGNED_NO_ROLE },
		/* expiry: plain digits only */
		{ "-1", "janus", { "janus.plugin.alliance", "alliance.supervisor" }, 2, AUTH_SIGNED_MALFORMED },
		{ "+1999999999", "janus", { "janus.plugin.alliance", "alliance.supervisor" }, 2, AUTH_SIGNED_MALFORMED },
		{ "1999999999x", "janus", { "janus.plugin.alliance", "alliance.supervisor" }, 2, AUTH_SIGNED_MALFORMED },
		{ "99999999999999999999", "janus", { "janus.plugin.alliance", "alliance.supervisor" }, 2, AUTH_SIGNED_MALFORMED },
		{ "", "janus", { "janus.plugin.alliance", "alliance.supervisor" }, 2, AUTH_SIGNED_MALFORMED },
		{ "0", "janus", { "janus.plugin.alliance", "alliance.supervisor" }, 2, AUTH_SIGNED_EXPIRED },
	};
	for(size_t i = 0; i < G_N_ELEMENTS(v); i++) {
		/* signed by hand, so that shapes auth_signed_make refuses can be made */
		GString *text = g_string_new(NULL);
		g_string_append_printf(text, "%s,%s", v[i].expiry, v[i].realm);
		for(size_t k = 0; k < v[i].n; k++)
			g_string_append_printf(text, ",%s", v[i].d[k]);
		GHmac *h = g_hmac_new(G_CHECKSUM_SHA1, (const guchar *)SECRET, strlen(SECRET));
		g_hmac_update(h, (const guchar *)text->str, (gssize)text->len);
		guint8 mac[20];
		gsize n = sizeof(mac);
		g_hmac_get_digest(h, mac, &n);
		g_hmac_unref(h);
		gchar *b64 = g_base64_encode(mac, n);
		g_string_append_printf(text, ":%s", b64);
		g_free(b64);
		auth_grant g;
		auth_signed_rc rc = auth_signed_verify(SECRET, text->str, NOW, &g);
		if(rc != v[i].want)
			g_error("case %zu (%s): got %d (%s), want %d", i, text->str, rc, auth_signed_rc_text(rc), v[i].want);
		g_assert_cmpstr(g.therapist, ==, "");
		g_assert_false(g.supervisor);
		g_string_free(text, TRUE);
	}
	/* both roles in one token: both granted */
	char out[256];
	const char *d[] = { "alliance.supervisor", "janus.plugin.alliance", "alliance.therapist=T-07", "alliance.therapist=T-07" };
	g_assert_cmpint(auth_signed_make(SECRET, 1999999999LL, "janus", d, 4, out, sizeof(out)), >, 0);
	auth_grant g;
	g_assert_cmpint(auth_signed_verify(SECRET, out, NOW, &g), ==, AUTH_SIGNED_OK);
	g_assert_true(g.supervisor);
	g_assert_cmpstr(g.therapist, ==, "T-07");
	/* the maker refuses parts that would change the token's shape */
	const char *comma[] = { "a,b" }, *colon[] = { "a:b" };
	g_assert_cmpint(auth_signed_make(SECRET, 1, "janus", comma, 1, out, sizeof(out)), ==, -1);
	g_assert_cmpint(auth_signed_make(SECRET, 1, "janus", colon, 1, out, sizeof(out)), ==, -1);
	g_assert_cmpint(auth_signed_make(SECRET, 1, "janus", d, 2, out, 10), ==, -1);
	for(auth_signed_rc rc = AUTH_SIGNED_OK; rc <= AUTH_SIGNED_NO_ROLE; rc++)
		g_assert_cmpstr(auth_signed_rc_text(rc), !=, "refused");
}

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/auth/base64url", test_base64url_vectors);
	g_test_add_func("/auth/token", test_token_shape_and_uniqueness);
	g_test_add_func("/auth/digest", test_digest_known_value);
	g_test_add_func("/auth/digest-bad-hex", test_digest_bad_hex);
	g_test_add_func("/auth/shapes", test_shapes);
	g_test_add_func("/auth/keyring", test_keyring);
	g_test_add_func("/auth/signed/reference", test_signed_reference_tokens);
	g_test_add_func("/auth/signed/tampering", test_signed_tampering);
	g_test_add_func("/auth/signed/hostile", test_signed_hostile_shapes);
	g_test_add_func("/auth/signed/descriptors", test_signed_wrong_descriptors);
	return g_test_run();
}
