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
 * - auth_signed_verify() checks a Janus signed token (the core's
 *   token_auth_secret mode) and says what it grants here: a therapist code
 *   or the supervisor role (PROTOCOL.md v1.1 "Operations and supervision").
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

/* --- Janus signed tokens -------------------------------------------------------
 * Janus 1.1.2's signed-token mode (janus.jcfg: token_auth = true and
 * token_auth_secret): a token is
 *     <expiry>,<realm>,<descriptor>,...:<signature>
 * where expiry is in seconds since the Unix epoch (the token is good through
 * that second), the signature is the standard base64 (with its padding, 28
 * characters) of HMAC-SHA1(secret, everything before the ':'), and the
 * Janus core itself accepts a token of realm "janus" for its API when the
 * descriptors name the plugin. Here a token stands in for a key when its
 * realm is AUTH_SIGNED_REALM and its descriptors include AUTH_SIGNED_PLUGIN
 * and AUTH_SIGNED_THERAPIST<code> (that therapist) or AUTH_SIGNED_SUPERVISOR.
 *
 * The order of the checks: shape (length, one ':' and a signature of the
 * right length and alphabet), then the signature (constant-time), and only
 * then the signed text is read (expiry, realm, descriptors): nothing an
 * attacker wrote is interpreted before it is known to be signed. Stricter
 * than the core where the core is lenient: the expiry must be plain decimal
 * digits, and two different therapist codes in one token are refused. */
#define AUTH_SIGNED_MAX 2048                     /* longest token accepted, bytes */
#define AUTH_SIGNED_SIG_CHARS 28                 /* base64 of a 20-byte HMAC-SHA1 */
#define AUTH_SIGNED_REALM "janus"
#define AUTH_SIGNED_PLUGIN "janus.plugin.alliance"
#define AUTH_SIGNED_THERAPIST "alliance.therapist="
#define AUTH_SIGNED_SUPERVISOR "alliance.supervisor"

typedef enum auth_signed_rc {
	AUTH_SIGNED_OK = 0,
	AUTH_SIGNED_DISABLED,        /* no secret: signed tokens are not in use */
	AUTH_SIGNED_MALFORMED,       /* not <text>:<signature>, too long, a bad expiry */
	AUTH_SIGNED_BAD_SIGNATURE,   /* not signed with this secret */
	AUTH_SIGNED_EXPIRED,
	AUTH_SIGNED_WRONG_REALM,     /* signed, but not of realm "janus" */
	AUTH_SIGNED_NOT_FOR_PLUGIN,  /* no "janus.plugin.alliance" descriptor */
	AUTH_SIGNED_BAD_CODE,        /* alliance.therapist= with no code, a bad one, or two */
	AUTH_SIGNED_NO_ROLE,         /* neither alliance.therapist=<code> nor alliance.supervisor */
} auth_signed_rc;

/* What a valid token grants. */
typedef struct auth_grant {
	int64_t expiry_s;
	bool supervisor;                     /* alliance.supervisor */
	char therapist[AUTH_CODE_MAX + 1];   /* alliance.therapist=<code>, "" if none */
} auth_grant;

/* Check token (NUL-terminated, any bytes) against secret at now_s (wall
 * clock, seconds since the epoch). AUTH_SIGNED_OK fills *out; anything
 * else leaves it zeroed. secret NULL or "" gives AUTH_SIGNED_DISABLED. */
auth_signed_rc auth_signed_verify(const char *secret, const char *token, int64_t now_s,
	auth_grant *out);

/* A short phrase for a refusal ("expired", "not signed with this server's
 * secret", ...), for the 475's text and the log; never the token. */
const char *auth_signed_rc_text(auth_signed_rc rc);

/* Make a token as the Janus documentation's sample code does (for the
 * tests and the start-up check that the core uses the same secret):
 * expiry, realm, then the n descriptors. Returns its length, or -1 if it
 * does not fit in outlen bytes (or a part contains ',' or ':'). */
int auth_signed_make(const char *secret, int64_t expiry_s, const char *realm,
	const char *const *descriptors, size_t n, char *out, size_t outlen);

#endif
