"""Janus signed tokens in place of keys (PROTOCOL.md v1.1 "Operations and
supervision"; docs/api.md "Signed tokens").

This module's Janus runs with `token_auth = true` and a `token_auth_secret`
in janus.jcfg, so the Janus core itself wants a signed token naming
janus.plugin.alliance on every API request (the harness sends
`server.api_token`). The tokens are made in Python (hmac + base64, as the
Janus documentation's sample code makes them); the core verifying the
transport token is a second, independent verifier of the same format.

A token with the right descriptors works for create, join and report; an
expired one, one for another therapist's code, one signed with another
secret, one not naming the plugin, one of another realm and one granting
another role are each refused with 475, and change nothing."""
import secrets
import time

import pytest

from harness import store
from harness.alliance import PLUGIN, Scope, expect, expect_error, join_client
from harness import api as _api
from harness.api import JanusError, connect
from harness.janus import sign_token

SECRET = "ap-it-" + secrets.token_hex(16)
ALLIANCE_CONFIG = {"token_secret": SECRET}


def token(*descriptors, expiry=None, secret=SECRET, realm="janus"):
    return sign_token(secret, descriptors, expiry=expiry, realm=realm)


def therapist_token(code="T-01", **kw):
    return token(PLUGIN, f"alliance.therapist={code}", **kw)


def supervisor_token(**kw):
    return token(PLUGIN, "alliance.supervisor", **kw)


async def test_core_runs_with_signed_tokens(janus):
    """The setup is real: the core refuses a session with an expired token
    and an attach whose token does not name the plugin; the plugin says it
    takes tokens (log line and health)."""
    other = token("janus.plugin.echotest")
    s = await connect(janus, "ws", token=other)
    try:
        with pytest.raises(JanusError) as e:
            await s.attach(PLUGIN)
        assert e.value.code == 405, e.value
    finally:
        await s.destroy()
    # the Janus core itself logs a token it refuses for a plugin (janus.c,
    # "Token '...' can't access plugin"): not the plugin's log line, and a
    # token that grants nothing here
    _api.SEEN_SECRETS.discard(other)
    with pytest.raises(JanusError) as e:
        await connect(janus, "ws", token=token(PLUGIN, expiry=int(time.time()) - 5))
    assert e.value.code == 403, e.value                # unauthorized
    assert "signed tokens accepted in place of keys" in janus.wait_log("signed tokens accepted")
    assert janus.health()["tokens"] is True


@pytest.mark.parametrize("transport", ["ws", "http"])
async def test_tokens_create_join_report(janus, keys, transport):
    async with Scope(janus, transport) as sc:
        th, cl, ob, sup = (await sc.handle(), await sc.handle(), await sc.handle(), await sc.handle())
        t01 = therapist_token("T-01")
        created = expect(await th.request({"request": "create", "therapist_token": t01,
                                            "client_code": "C-TOK1"}), "created")
        vid = created["visit_id"]
        joined = expect(await th.request({"request": "join", "role": "therapist", "visit_id": vid,
                                           "therapist_token": t01}), "joined")
        assert joined["role"] == "therapist" and joined["visit_id"] == vid, joined
        await join_client(cl, created["invite"], research=True)
        await th.wait_event(alliance="waiting", timeout=5)
        expect(await th.request({"request": "admit"}), "admitted")
        # an observer with a supervisor token
        o = expect(await ob.request({"request": "join", "role": "observer", "visit_id": vid,
                                      "supervisor_token": supervisor_token()}), "joined")
        assert o["role"] == "observer", o
        # the report of that visit, with a supervisor token
        r = await sup.request({"request": "report", "kind": "visit", "visit_id": vid,
                               "supervisor_token": supervisor_token()}, timeout=15)
        d = expect(r, "report")                     # sync or by event: request() gives either
        assert d["visit"]["visit_id"] == vid and d["visit"]["therapist_code"] == "T-01", d["visit"]
        # what was stored is the token's therapist code
        row = await store.wait_row(janus.db_path, "SELECT therapist_code FROM visits WHERE visit_id = ?",
                                   (vid,), timeout=5)
        assert row["therapist_code"] == "T-01", row
        # keys still work beside tokens
        expect(await th.request({"request": "status"}), "status")
        k = await sc.handle()
        expect(await k.request({"request": "create", "therapist_key": keys.therapist("T-02"),
                                "client_code": "C-TOK2"}), "created")
        # a token for a code the plugin configuration does not list is that
        # therapist's (tokens replace per-person keys)
        n = await sc.handle()
        expect(await n.request({"request": "create", "therapist_token": therapist_token("T-99"),
                                "client_code": "C-TOK3"}), "created")


REFUSED = {
    "expired": therapist_token("T-01", expiry=int(time.time()) - 5),
    "another secret": therapist_token("T-01", secret="not-the-server-secret"),
    "no plugin descriptor": token("alliance.therapist=T-01"),
    "another realm": therapist_token("T-01", realm=PLUGIN),
    "a supervisor's": supervisor_token(),
    "no role": token(PLUGIN),
    "bad code": token(PLUGIN, "alliance.therapist=T 01"),
    "garbage": "not-a-token:at-all",
}


async def test_refused_tokens_change_nothing(janus):
    async with Scope(janus) as sc:
        before = janus.health()["visits_open"]
        for why, tok in REFUSED.items():
            h = await sc.handle()       # a fresh handle each: refusals count towards the 497
            d = expect_error(await h.request({"request": "create", "therapist_token": tok,
                                               "client_code": "C-NOPE"}), 475)
            assert "token" in d["error"], (why, d)
        assert janus.health()["visits_open"] == before
        expired = REFUSED["expired"]
        assert "expired" in expect_error(await (await sc.handle()).request(
            {"request": "create", "therapist_token": expired, "client_code": "C-NOPE"}), 475)["error"]
        # supervisor requests with a therapist's token, an expired or foreign one
        for tok in (therapist_token("T-01"), supervisor_token(expiry=int(time.time()) - 5),
                    supervisor_token(secret="not-the-server-secret")):
            h = await sc.handle()
            expect_error(await h.request({"request": "report", "kind": "visits", "supervisor_token": tok}), 475)
            expect_error(await h.request({"request": "forget", "client_code": "C-NOPE",
                                          "supervisor_token": tok}), 475)
        # both a key and a token: refused as a bad request
        h = await sc.handle()
        expect_error(await h.request({"request": "create", "therapist_token": therapist_token(),
                                      "therapist_key": "x" * 43, "client_code": "C-NOPE"}), 474)
        assert janus.health()["visits_open"] == before


async def test_token_of_another_therapist_refused_at_join(janus):
    async with Scope(janus) as sc:
        th = await sc.handle()
        created = expect(await th.request({"request": "create", "therapist_token": therapist_token("T-01"),
                                            "client_code": "C-TOK4"}), "created")
        vid = created["visit_id"]
        other = await sc.handle()
        d = expect_error(await other.request({"request": "join", "role": "therapist", "visit_id": vid,
                                               "therapist_token": therapist_token("T-02")}), 475)
        assert "therapist" in d["error"], d
        expired = await sc.handle()
        expect_error(await expired.request({"request": "join", "role": "therapist", "visit_id": vid,
                                             "therapist_token": therapist_token("T-01", expiry=int(time.time()) - 1)}),
                     475)
        # the visit's own therapist's token still joins; nothing was seated by the refusals
        expect(await th.request({"request": "join", "role": "therapist", "visit_id": vid,
                                 "therapist_token": therapist_token("T-01")}), "joined")
        ob = await sc.handle()
        # observers need the client's consent first; a wrong-role token is refused before that
        expect_error(await ob.request({"request": "join", "role": "observer", "visit_id": vid,
                                       "supervisor_token": therapist_token("T-01")}), 475)


def _signature_ok(tok: str) -> bool:
    """Checked here with Python's hmac, independently of the plugin."""
    import base64
    import hashlib
    import hmac
    text, sig = tok.rsplit(":", 1)
    want = base64.b64encode(hmac.new(SECRET.encode(), text.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(want, sig)


async def test_client_token_for_the_invite(janus, keys):
    """The client's link needs a Janus API token too where the core wants
    one: `created` and `reinvited` carry `client_token` (realm janus, the
    plugin only, good past the longest visit). With it alone a page opens a
    session, attaches and joins with the invite; it grants no role."""
    async with Scope(janus) as sc:
        th = await sc.handle()
        created = expect(await th.request({"request": "create", "therapist_key": keys.therapist("T-01"),
                                            "client_code": "C-TOK5"}), "created")
        tok = created.get("client_token")
        assert isinstance(tok, str) and _signature_ok(tok), "created carries a client token signed with the secret"
        expiry, realm, *desc = tok.rsplit(":", 1)[0].split(",")
        # max_visit_s (default 14400) + end_grace_s (180 here) + an hour
        assert realm == "janus" and desc == [PLUGIN], tok.rsplit(":", 1)[0]
        assert abs(int(expiry) - (time.time() + 14400 + 180 + 3600)) < 60, expiry
        expect(await th.request({"request": "join", "role": "therapist", "visit_id": created["visit_id"],
                                 "therapist_key": keys.therapist("T-01")}), "joined")
        # the client's page: only the link (invite + token)
        cs = await connect(janus, "ws", token=tok)
        try:
            cl = await cs.attach(PLUGIN)
            await join_client(cl, created["invite"], research=False)
            await th.wait_event(alliance="waiting", timeout=5)
            # it is no therapist's or supervisor's credential
            d = expect_error(await (await cs.attach(PLUGIN)).request(
                {"request": "create", "therapist_token": tok, "client_code": "C-TOK6"}), 475)
            assert "grants no alliance role" in d["error"], d
            expect_error(await (await cs.attach(PLUGIN)).request(
                {"request": "report", "kind": "visits", "supervisor_token": tok}), 475)
        finally:
            await cs.destroy()
        # a new link comes with a token of its own
        re = expect(await th.request({"request": "reinvite"}), "reinvited")
        assert _signature_ok(re["client_token"]), "reinvited carries a client token"
        cs = await connect(janus, "http", token=re["client_token"])
        try:
            await join_client(await cs.attach(PLUGIN), re["invite"], research=False)
        finally:
            await cs.destroy()


def test_secret_not_in_log(janus):
    assert SECRET not in janus.log_text()
