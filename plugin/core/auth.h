/*
 * auth.h — secrets of Alliance Pulse: keys, invites, constant-time checks.
 *
 * People hold random tokens (therapist keys, supervisor keys, client
 * invites, client re-join keys). The server never stores a token, only its
 * SHA-256 digest, and compares digests in constant time so that response
 * timing tells an attacker nothing about how close a guess was.
 *
 * - auth_token_new() makes a URL-safe token from the kernel CSPRNG
 *   (getrandom(2)); AUTH_TOKEN_BYTES of randomness = 192 bits.
 * - auth_digest() hashes a token (GLib's SHA-256).
 * - auth_keyring holds the configured therapist keys (digest -> therapist
 *   code) and supervisor keys; lookups scan every entry without an early
 *   exit, so their time does not depend on which entry (if any) matched.
 *
 * Pure apart from the CSPRNG read: no Janus, no threads, no logging.
 */
#ifndef ALLIANCE_AUTH_H
#define ALLIANCE_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define AUTH_DIGEST_LEN 32          /* SHA-256 */
#define AUTH_TOKEN_BYTES 24         /* 192 random bits */
#define AUTH_TOKEN_CHARS 32         /* base64url of 24 bytes, no padding */
#define AUTH_CODE_MAX 32            /* longest pseudonymous code, e.g. "T-07" */

typedef struct auth_digest {
	uint8_t b[AUTH_DIGEST_LEN];
} auth_digest;

/* Fill out[AUTH_TOKEN_CHARS+1] with a fresh random URL-safe token.
 * Returns 0, or -1 if the CSPRNG failed (out is then zeroed). */
int auth_token_new(char out[AUTH_TOKEN_CHARS + 1]);

/* Base64url (RFC 4648 §5, no padding) of len bytes into out, which must hold
 * 4*ceil(len/3)+1 bytes. Returns the string length. */
size_t auth_base64url(const uint8_t *in, size_t len, char *out);

/* SHA-256 of a NUL-terminated string. */
void auth_digest_of(const char *token, auth_digest *out);

/* Parse 64 hex characters (either case) into a digest. Returns 0 or -1. */
int auth_digest_from_hex(const char *hex, auth_digest *out);

/* The 64 lower-case hex characters of a digest. */
void auth_digest_hex(const auth_digest *d, char out[2 * AUTH_DIGEST_LEN + 1]);

/* Constant-time equality of two digests. */
bool auth_digest_equal(const auth_digest *a, const auth_digest *b);

/* True if s looks like a token we could have issued or a configured key:
 * 16..128 characters of [A-Za-z0-9_-]. Cheap shape check before hashing. */
bool auth_token_shape_ok(const char *s);

/* True if s is a valid pseudonymous code: 1..AUTH_CODE_MAX characters of
 * [A-Za-z0-9_.-]. Names with spaces are refused by design. */
bool auth_code_ok(const char *s);

typedef struct auth_keyring auth_keyring;

auth_keyring *auth_keyring_new(void);
void auth_keyring_free(auth_keyring *kr);

/* Add a therapist key (digest as 64 hex chars) mapped to a code.
 * Returns 0, or -1 with a reason in err (bad hex, bad code, duplicate). */
int auth_keyring_add_therapist(auth_keyring *kr, const char *code,
	const char *key_sha256_hex, char *err, size_t errlen);
int auth_keyring_add_supervisor(auth_keyring *kr, const char *key_sha256_hex,
	char *err, size_t errlen);
size_t auth_keyring_therapists(const auth_keyring *kr);
size_t auth_keyring_supervisors(const auth_keyring *kr);

/* The therapist code for a presented key, or NULL. The returned string is
 * owned by the keyring. */
const char *auth_keyring_therapist(const auth_keyring *kr, const char *key);
bool auth_keyring_supervisor(const auth_keyring *kr, const char *key);
/* Which configured supervisor (0-based, in configuration order) a key
 * belongs to, or -1: observers of one supervisor share one seat. */
int auth_keyring_supervisor_index(const auth_keyring *kr, const char *key);

#endif
