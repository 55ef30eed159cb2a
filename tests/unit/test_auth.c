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

int main(int argc, char **argv) {
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/auth/base64url", test_base64url_vectors);
	g_test_add_func("/auth/token", test_token_shape_and_uniqueness);
	g_test_add_func("/auth/digest", test_digest_known_value);
	g_test_add_func("/auth/digest-bad-hex", test_digest_bad_hex);
	g_test_add_func("/auth/shapes", test_shapes);
	g_test_add_func("/auth/keyring", test_keyring);
	return g_test_run();
}
