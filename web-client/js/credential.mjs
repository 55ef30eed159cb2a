// Alliance Pulse web client — what a person signs in with, and what a
// link carries.
//
// A therapist or supervisor types either a key of
// janus.plugin.alliance.jcfg or, where Janus runs with token_auth, the
// Janus signed token their organisation gave them
// (`<expiry>,janus,janus.plugin.alliance,alliance.therapist=T-01:<sig>`,
// docs/api.md "Signed tokens"). A token is sent in place of the key
// (therapist_token / supervisor_token) and as the Janus API's own token
// (useToken); a key only in the request. A client's link carries the
// invite and, from such a server, the client token the plugin made for
// it: `client.html#invite=…&token=…`.

import { useToken } from "./alliance-client.mjs";

// The shape only (the server checks the signature): expiry, realm janus,
// descriptors, and a 28-character standard-base64 HMAC-SHA1.
const SIGNED = /^\d{1,12},janus(,[^,:\s]+)+:[A-Za-z0-9+/]{27}=$/;

export const isSignedToken = (s) => typeof s === "string" && s.length <= 2048 && SIGNED.test(s);

// The request fields for role "therapist" | "supervisor" with this
// secret; uses it as the page's Janus API token when it is a token.
export function credential(role, secret) {
  const token = isSignedToken(secret);
  return { [`${role}_${token ? "token" : "key"}`]: secret };
}

// Before connecting with this sign-in secret.
export function useSignIn(secret) {
  useToken(isSignedToken(secret) ? secret : null);
}

// invite and client token from a link (or what was pasted of one).
export function linkParts(text) {
  const s = String(text || "").trim();
  const inv = s.match(/invite=([A-Za-z0-9_-]+)/);
  const tok = s.match(/[#&?]token=([^&\s]+)/);
  let token = null;
  if (tok) {
    try { token = decodeURIComponent(tok[1]); } catch (_) { token = null; }
  }
  return { invite: inv ? inv[1] : s, token: isSignedToken(token) ? token : null };
}

// The fragment of a client link.
export function linkHash(invite, clientToken) {
  return `invite=${invite}${isSignedToken(clientToken) ? `&token=${encodeURIComponent(clientToken)}` : ""}`;
}
