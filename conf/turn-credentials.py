#!/usr/bin/python3
"""Time-limited TURN credentials for coturn's `use-auth-secret` (the "TURN
REST API" scheme), as an `iceServers` entry for the pages' config.json.

    username   = "<expiry, Unix seconds>:<name>"
    credential = base64(HMAC-SHA1(static-auth-secret, username))

coturn recomputes the credential from the username and its own copy of the
secret and refuses a username whose expiry has passed, so the secret never
leaves the server and a copied credential stops working at its expiry.

Used by conf/run-local.sh (one credential per run, 24 h) and tests/e2e. In
production a credential service makes a fresh one per visit page
(docs/turn.md); this file is the formula, with nothing else in it.

Usage: turn-credentials.py --secret-file FILE --url turn:HOST:PORT?transport=udp
                           [--url ...] [--ttl SECONDS] [--name NAME]
Prints one JSON object: {"urls": [...], "username": ..., "credential": ...}.
"""
import argparse
import base64
import hashlib
import hmac
import json
import re
import sys
import time

MAX_TTL_S = 7 * 86400
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")   # no ':' (it separates the expiry)


def credential(secret: str, ttl_s: int, name: str, now: float = None) -> dict:
    """The username and credential for `secret`, valid for ttl_s from now."""
    if not secret:
        raise ValueError("empty secret")
    if not 60 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl must be 60..{MAX_TTL_S} s")
    if not NAME_RE.match(name):
        raise ValueError("name must be 1-64 of A-Z a-z 0-9 . _ -")
    expiry = int(time.time() if now is None else now) + ttl_s
    username = f"{expiry}:{name}"
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(mac).decode(), "expires": expiry}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--secret-file", required=True, help="file holding coturn's static-auth-secret")
    ap.add_argument("--url", action="append", required=True, help="a turn:/turns: URL (repeatable)")
    ap.add_argument("--ttl", type=int, default=86400, help="seconds until the credential expires")
    ap.add_argument("--name", default="alliance", help="the part of the username after the expiry")
    a = ap.parse_args()
    try:
        with open(a.secret_file, encoding="utf-8") as f:
            secret = f.read().strip()
        c = credential(secret, a.ttl, a.name)
    except (OSError, ValueError) as e:
        print(f"turn-credentials: {e}", file=sys.stderr)
        return 1
    bad = [u for u in a.url if not re.match(r"^turns?:[^\s?#/@]+(\?transport=(udp|tcp))?$", u)]
    if bad:
        print(f"turn-credentials: not a turn:/turns: URL: {bad[0]}", file=sys.stderr)
        return 2
    print(json.dumps({"urls": a.url, "username": c["username"], "credential": c["credential"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
