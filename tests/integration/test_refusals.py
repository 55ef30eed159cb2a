"""Refused requests: each asserts the exact error_code of docs/api.md and
that the visit did not change (status before == status after, and the next
legitimate step still works). WebSocket transport, one Janus for the module.
"""
import secrets

import pytest

from harness.alliance import (Scope, configure, create_visit, expect, expect_error,
                              join_client, join_therapist, request_error, status, visit_view)
from harness.api import JanusError
from harness.janus import new_key


def random_token():
    return secrets.token_urlsafe(24)          # 32 chars, like a real invite


async def therapist_visit(sc, keys, client_code="C-0042"):
    th = await sc.handle()
    key = keys.therapist("T-01")
    created = await create_visit(th, key, client_code)
    await join_therapist(th, created["visit_id"], key)
    return th, created


async def waiting_visit(sc, keys):
    th, created = await therapist_visit(sc, keys)
    cl = await sc.handle()
    jc = await join_client(cl, created["invite"])
    assert jc.get("state") == "waiting"
    await th.wait_event(alliance="waiting", timeout=5)
    return th, cl, created, jc


async def live_visit(sc, keys):
    th, cl, created, jc = await waiting_visit(sc, keys)
    expect(await th.request({"request": "admit"}), "admitted")
    await cl.wait_event(alliance="admitted", timeout=5)
    return th, cl, created, jc


async def assert_unchanged(th, before):
    after = visit_view(await status(th))
    assert after == before, f"a refused request changed the visit: {before} -> {after}"


# -- credentials -------------------------------------------------------------------
async def test_create_with_wrong_key(janus, keys):
    async with Scope(janus) as sc:
        h = await sc.handle()
        await request_error(h, {"request": "create", "therapist_key": new_key(),
                                "client_code": "C-0042"}, 475)
        await request_error(h, {"request": "create", "therapist_key": "",
                                "client_code": "C-0042"}, 474)          # empty -> invalid element
        # nothing was created and the handle is still usable
        await request_error(h, {"request": "status"}, 480)
        await create_visit(h, keys.therapist("T-01"), "C-0042")


async def test_join_with_wrong_key_or_other_therapists_key(janus, keys):
    async with Scope(janus) as sc:
        h0 = await sc.handle()
        created = await create_visit(h0, keys.therapist("T-01"))
        vid = created["visit_id"]
        h = await sc.handle()
        await request_error(h, {"request": "join", "role": "therapist", "visit_id": vid,
                                "therapist_key": new_key()}, 475)
        await request_error(h, {"request": "join", "role": "therapist", "visit_id": vid,
                                "therapist_key": keys.therapist("T-02")}, 475)
        await request_error(h, {"request": "status"}, 480)       # still not joined
        j = await join_therapist(h, vid, keys.therapist("T-01"))
        # T-02's attempt did not take the therapist seat; the invite is still fresh
        cl = await sc.handle()
        jc = await join_client(cl, created["invite"])
        assert jc["state"] == "waiting"
        st = await status(h)
        assert st.get("state") == "waiting" and j.get("visit_id") == vid


async def test_join_unknown_visit(janus, keys):
    async with Scope(janus) as sc:
        h = await sc.handle()
        await request_error(h, {"request": "join", "role": "therapist", "visit_id": random_token(),
                                "therapist_key": keys.therapist("T-01")}, 476)


async def test_unknown_invite(janus, keys):
    async with Scope(janus) as sc:
        th, created = await therapist_visit(sc, keys)
        before = visit_view(await status(th))
        cl = await sc.handle()
        await request_error(cl, {"request": "join", "role": "client", "invite": random_token(),
                                 "consent": {"research": True}}, 477)
        await assert_unchanged(th, before)
        assert await th.no_event("waiting", 0.3)
        jc = await join_client(cl, created["invite"])         # same handle can still join
        assert jc["state"] == "waiting"


async def test_used_invite_needs_rejoin_key(janus, keys):
    async with Scope(janus) as sc:
        th, cl, created, jc = await waiting_visit(sc, keys)
        before = visit_view(await status(th))
        other = await sc.handle()
        await request_error(other, {"request": "join", "role": "client",
                                    "invite": created["invite"],
                                    "consent": {"research": True}}, 478)
        await assert_unchanged(th, before)
        # a wrong rejoin_key is refused too (docs/api.md does not fix its code)
        r = await other.request({"request": "join", "role": "client", "invite": created["invite"],
                                 "rejoin_key": random_token(), "consent": {"research": True}})
        assert r.alliance == "error" and r.error_code in (475, 477, 478), r
        await assert_unchanged(th, before)
        # the original client is unaffected: it can still be admitted
        expect(await th.request({"request": "admit"}), "admitted")
        await cl.wait_event(alliance="admitted", timeout=5)


# -- roles and states --------------------------------------------------------------
async def test_client_may_not_admit_or_end(janus, keys):
    async with Scope(janus) as sc:
        th, cl, created, jc = await waiting_visit(sc, keys)
        before = visit_view(await status(th))
        for req in ("admit", "end"):
            await request_error(cl, {"request": req}, 479)
            await assert_unchanged(th, before)
        assert await cl.no_event("admitted", 0.2)
        expect(await th.request({"request": "admit"}), "admitted")
        await cl.wait_event(alliance="admitted", timeout=5)
        await request_error(cl, {"request": "end"}, 479)
        st = await status(th)
        assert st.get("state") == "live"


async def test_pulse_refusals(janus, keys):
    """`pulse` is in PROTOCOL.md; docs/api.md: a client asking `pulse` is 479,
    and like every participant request it needs a joined handle (480)."""
    async with Scope(janus) as sc:
        nobody = await sc.handle()
        await request_error(nobody, {"request": "pulse"}, 480)
        th, cl, created, jc = await live_visit(sc, keys)
        before = visit_view(await status(th))
        await request_error(cl, {"request": "pulse"}, 479)
        await request_error(cl, {"request": "pulse", "target": "therapist"}, 479)
        await assert_unchanged(th, before)


async def test_client_configure_before_admission(janus, keys):
    async with Scope(janus) as sc:
        th, cl, created, jc = await waiting_visit(sc, keys)
        before = visit_view(await status(th))
        peer = sc.peer("client")
        offer = await peer.offer()
        err = await request_error(cl, {"request": "configure", "audio": True, "video": True}, 482,
                                  jsep=offer)
        assert err.get("pc_reset") is True, err     # the half-made PC is dropped...
        await cl.wait_event(janus="hangup", timeout=5)   # ...and Janus says so
        assert janus.wait_peerconnections_gone(handle_id=cl.id)         # ...and has torn it down
        await assert_unchanged(th, before)
        expect(await th.request({"request": "admit"}), "admitted")
        await cl.wait_event(alliance="admitted", timeout=5)
        try:
            await configure(cl, peer)                  # now it is allowed, on the same handle
        except JanusError as e:
            raise AssertionError(f"configure after admission failed in the Janus core: {e} "
                                 "(the refused offer was left half-negotiated; see "
                                 "test_configure_refused_with_offer_then_retry)") from None


async def test_admit_with_nobody_waiting(janus, keys):
    async with Scope(janus) as sc:
        th, created = await therapist_visit(sc, keys)
        before = visit_view(await status(th))
        await request_error(th, {"request": "admit"}, 483)
        await assert_unchanged(th, before)
        cl = await sc.handle()
        await join_client(cl, created["invite"])
        expect(await th.request({"request": "admit"}), "admitted")
        live = visit_view(await status(th))
        assert live["state"] == "live"
        await request_error(th, {"request": "admit"}, 483)      # already live, nobody waiting
        await assert_unchanged(th, live)


# -- malformed requests --------------------------------------------------------------
async def test_body_not_an_object_and_malformed_json(janus, keys):
    async with Scope(janus) as sc:
        th, created = await therapist_visit(sc, keys)
        before = visit_view(await status(th))
        for body in (["request", "status"], "status", 42):
            try:
                r = await th.request(body)
            except JanusError as e:
                assert e.code == 467, e        # the core refuses non-object bodies itself
            else:
                expect_error(r, 471)
        await assert_unchanged(th, before)

        # truly malformed JSON, raw over HTTP, to the plugin handle's URL
        hs = await sc.session("http")
        hh = await hs.attach("janus.plugin.alliance")
        code, text = await hs.post_raw(b'{"janus":"message","transaction":"x","body":{"request":',
                                       hh.id)
        assert code == 200 and '"error"' in text and "454" in text, (code, text[:200])
        code, text = await hs.post_raw(b"\xff\xfe\x00garbage", hh.id)
        assert '"error"' in text, (code, text[:200])
        # ... and over WebSocket
        ws = th.session
        await ws.send_raw('{"janus":"message","body":{')
        err = await ws.wait_unrouted(lambda m: m.get("janus") == "error", timeout=5)
        assert err["error"]["code"] == 454, err
        assert janus.alive()
        await assert_unchanged(th, before)
        await request_error(hh, {"request": "status"}, 480)      # the HTTP handle works


async def test_unknown_and_missing_request(janus, keys):
    async with Scope(janus) as sc:
        th, created = await therapist_visit(sc, keys)
        before = visit_view(await status(th))
        await request_error(th, {"request": "teleport"}, 472)
        await request_error(th, {"no_request": True}, 473)       # `request` itself is required
        await request_error(th, {"request": 7}, 474)
        await assert_unchanged(th, before)


async def test_missing_fields(janus, keys):
    key = keys.therapist("T-01")
    async with Scope(janus) as sc:
        h = await sc.handle()
        await request_error(h, {"request": "create", "therapist_key": key}, 473)
        await request_error(h, {"request": "create", "client_code": "C-0042"}, 473)
        await request_error(h, {"request": "join", "role": "therapist", "therapist_key": key}, 473)
        created = await create_visit(h, key)
        await request_error(h, {"request": "join", "role": "therapist",
                                "visit_id": created["visit_id"]}, 473)
        await request_error(h, {"request": "join", "visit_id": created["visit_id"],
                                "therapist_key": key}, 473)
        cl = await sc.handle()
        await request_error(cl, {"request": "join", "role": "client",
                                 "consent": {"research": True}}, 473)
        # nothing consumed: both can still join
        await join_therapist(h, created["visit_id"], key)
        jc = await join_client(cl, created["invite"])
        assert jc["state"] == "waiting"


async def test_wrongly_typed_fields(janus, keys):
    key = keys.therapist("T-01")
    async with Scope(janus) as sc:
        h = await sc.handle()
        await request_error(h, {"request": "create", "therapist_key": key, "client_code": 42}, 474)
        await request_error(h, {"request": "create", "therapist_key": key, "client_code": ""}, 474)
        await request_error(h, {"request": "create", "therapist_key": key, "client_code": "C-0042",
                                "modality": "carrier-pigeon"}, 474)
        await request_error(h, {"request": "create", "therapist_key": key, "client_code": "C-0042",
                                "modality": 1}, 474)
        await request_error(h, {"request": "create", "therapist_key": 12345,
                                "client_code": "C-0042"}, 474)
        created = await create_visit(h, key, modality="in_person")
        assert created["modality"] == "in_person"
        created = await create_visit(h, key)
        await request_error(h, {"request": "join", "role": "plumber",
                                "visit_id": created["visit_id"], "therapist_key": key}, 474)
        await request_error(h, {"request": "join", "role": "therapist", "visit_id": 17,
                                "therapist_key": key}, 474)
        await join_therapist(h, created["visit_id"], key)
        before = visit_view(await status(h))
        cl = await sc.handle()
        await request_error(cl, {"request": "join", "role": "client", "invite": created["invite"],
                                 "consent": {"research": "yes"}}, 474)
        await request_error(cl, {"request": "join", "role": "client", "invite": created["invite"],
                                 "consent": "yes"}, 474)
        await request_error(cl, {"request": "join", "role": "client", "invite": 99,
                                 "consent": {"research": True}}, 474)
        await assert_unchanged(h, before)
        jc = await join_client(cl, created["invite"], research=False)   # invite not consumed
        assert jc["state"] == "waiting"


async def test_requests_before_join(janus, keys):
    async with Scope(janus) as sc:
        h = await sc.handle()
        for req in ("admit", "status", "end", "leave"):
            await request_error(h, {"request": req}, 480)
        peer = sc.peer("nobody")
        await request_error(h, {"request": "configure", "audio": True, "video": True}, 480,
                            jsep=await peer.offer())


async def test_join_twice(janus, keys):
    key = keys.therapist("T-01")
    async with Scope(janus) as sc:
        th, created = await therapist_visit(sc, keys)
        before = visit_view(await status(th))
        # same handle again, as therapist and as client
        await request_error(th, {"request": "join", "role": "therapist",
                                 "visit_id": created["visit_id"], "therapist_key": key}, 481)
        await request_error(th, {"request": "join", "role": "client", "invite": created["invite"],
                                 "consent": {"research": True}}, 481)
        await assert_unchanged(th, before)
        # a second therapist handle while the therapist is present: not a
        # refusal but a takeover (v1.1): the old handle is replaced
        th2 = await sc.handle()
        j2 = expect(await th2.request({"request": "join", "role": "therapist",
                                       "visit_id": created["visit_id"], "therapist_key": key}), "joined")
        assert j2.get("took_over") is True, j2
        await th.wait_event(alliance="replaced", timeout=5)
        await request_error(th, {"request": "status"}, 480)
        await assert_unchanged(th2, before)
        # the 481 client attempt did not consume the invite
        cl = await sc.handle()
        jc = await join_client(cl, created["invite"])
        assert jc["state"] == "waiting"
        await request_error(cl, {"request": "join", "role": "client", "invite": created["invite"],
                                 "rejoin_key": jc["rejoin_key"], "consent": {"research": True}},
                            481)


async def test_configure_without_or_with_bad_sdp(janus, keys):
    async with Scope(janus) as sc:
        th, cl, created, jc = await live_visit(sc, keys)
        before = visit_view(await status(th))
        await request_error(cl, {"request": "configure", "audio": True, "video": True}, 484)
        await assert_unchanged(th, before)
        try:
            r = await cl.request({"request": "configure", "audio": True, "video": True},
                                 jsep={"type": "offer", "sdp": "v=0\r\nthis is not sdp\r\n"})
        except JanusError as e:
            assert e.code == 465, e            # the core's own SDP parser refused it first
        else:
            expect_error(r, 484)
        await assert_unchanged(th, before)
        peer = sc.peer("client")
        await configure(cl, peer)           # a proper configure still works
        await peer.wait_connected(5)


async def test_configure_refused_with_offer_then_retry(janus, keys):
    """A configure that carries a valid offer but is refused (here: a
    wrongly typed field) must leave the handle able to negotiate: the retry
    on the same handle and the same PeerConnection must succeed.

    (The Janus core processes the offer before the plugin sees the request;
    if the plugin refuses without answering, the core keeps the half-set-up
    ICE agent and rejects the next offer with 490 "Error setting ICE
    locally" -- unless the plugin calls gateway->close_pc() when refusing a
    request that carried a JSEP, or the client sends a Janus `hangup`.)"""
    async with Scope(janus) as sc:
        th, cl, created, jc = await live_visit(sc, keys)
        before = visit_view(await status(th))
        peer = sc.peer("client")
        err = await request_error(cl, {"request": "configure", "audio": "yes", "video": True}, 474,
                                  jsep=await peer.offer())
        assert err.get("pc_reset") is True, err
        await cl.wait_event(janus="hangup", timeout=5)
        assert janus.wait_peerconnections_gone(handle_id=cl.id)         # the teardown, not just its start
        await assert_unchanged(th, before)
        try:
            await configure(cl, peer)
        except JanusError as e:
            raise AssertionError(f"retry after a refused configure failed in the Janus core: {e} "
                                 "(the refused offer was left half-negotiated)") from None
        await peer.wait_connected(5)
